"""Sweeps: many fpga-compress + export-fpga configurations from one TOML grid, one table.

- :mod:`~toolchain.sweep.grid`    the sweep file -> resolved configurations and their keys
- :mod:`~toolchain.sweep.flags`   a stage's options -> its CLI's arguments (from its parser)
- :mod:`~toolchain.sweep.jobs`    one configuration as an independent job -> one row
- :mod:`~toolchain.sweep.runner`  in this process or on Ray; skips finished configurations
- :mod:`~toolchain.sweep.table`   rows -> results.json and results.md
- :mod:`~toolchain.sweep.cli`     ``fpga-sweep`` / ``python -m toolchain.sweep``

Format and behaviour: docs/sweep.md.
"""
