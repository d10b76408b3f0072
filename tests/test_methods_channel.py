"""Channel pruning methods: layerwise (Zhang et al. Alg. 1), stepwise and one-shot schedules."""

import pytest
import torch

import toolchain
from toolchain.data import synthetic
from toolchain.methods import METHODS, MethodConfig, RunContext
from toolchain.methods.schedules import cubic_sparsity, layerwise_update
from toolchain.pruning import channel_groups
from toolchain.train import Callbacks, Trainer

SHAPE = (1, 8, 8)
DATA = synthetic(96, shape=SHAPE, seed=0)
VAL = synthetic(48, shape=SHAPE, seed=1)
CHANNEL_METHODS = ("layerwise", "stepwise", "one-shot")


def _prunable_channels(model) -> int:
    return sum(g.channels for g in channel_groups(model))


def _run(name, model_name="cnn", sparsity=0.5, **kw):
    options = {"steps_per_group": 4, "update_every": 2, **kw.pop("options", {})}
    cfg = MethodConfig(sparsity=sparsity, epochs=kw.pop("epochs", 0.25), batch_size=32,
                       options=options, **kw)
    model = toolchain.build(model_name, input_shape=SHAPE)
    return model, METHODS[name](cfg).run(model, DATA, VAL)


@pytest.mark.parametrize("name", CHANNEL_METHODS)
@pytest.mark.parametrize("model_name", ["cnn", "resnet", "dsconv", "mlp"])
def test_channel_methods_reach_the_target_and_remove_the_channels(name, model_name):
    model, result = _run(name, model_name, sparsity=0.5)
    before, after = _prunable_channels(model), _prunable_channels(result.model)
    assert 1 - after / before >= 0.5          # counted on the physically smaller network
    assert result.sparsity == pytest.approx(1 - after / before)
    assert result.reached and result.sparsity_kind == "channels"
    assert 0.0 <= result.val_accuracy <= 1.0
    assert result.model(torch.zeros(2, *SHAPE)).shape == (2, 10)


@pytest.mark.parametrize("sparsity", [0.25, 0.75])
def test_each_group_is_pruned_to_at_least_the_target(sparsity):
    model, result = _run("layerwise", "cnn", sparsity=sparsity)
    for name, group in result.layers.items():
        assert 1 - group["kept"] / group["channels"] >= sparsity - 1e-9, name


def test_round_to_keeps_channel_counts_multiples_of_n():
    model, result = _run("stepwise", "cnn", sparsity=0.3, round_to=4)
    for g in channel_groups(result.model):
        assert g.channels % 4 == 0
    assert result.reached


def test_without_removal_the_architecture_stays_and_masks_carry_the_pruning():
    model, result = _run("one-shot", "cnn", options={"remove": False})
    assert result.model.spec() == model.spec()
    groups = channel_groups(result.model)
    alive = sum(int(g.mask.sum()) for g in groups)
    assert 1 - alive / _prunable_channels(model) == pytest.approx(result.sparsity)
    assert result.sparsity >= 0.5


def test_the_input_model_is_left_untouched_and_runs_are_deterministic():
    model = toolchain.build("cnn", input_shape=SHAPE)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = MethodConfig(sparsity=0.5, epochs=0.25, batch_size=32,
                       options={"steps_per_group": 3})
    a = METHODS["layerwise"](cfg).run(model, DATA, VAL)
    b = METHODS["layerwise"](cfg).run(model, DATA, VAL)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka


def test_the_result_converts_to_an_integer_model_that_agrees():
    _, result = _run("layerwise", "resnet", epochs=0.5)
    assert toolchain.agreement(result.model, VAL.x) >= 0.9


# --- the schedules, observed step by step ----------------------------------------------------

class MaskLog:
    """Callback recording every group's alive-channel count after every training step."""

    def __init__(self, groups):
        self.groups, self.rows = groups, []

    def on_step_end(self, phase, step, loss, accuracy):
        self.rows.append((step, [int(g.mask.sum()) for g in self.groups]))


def _observe(name, tp=4, dp=2, sparsity=0.5, model_name="resnet"):
    model = toolchain.build(model_name, input_shape=SHAPE)
    groups = channel_groups(model)
    log = MaskLog(groups)
    cfg = MethodConfig(sparsity=sparsity, batch_size=32,
                       options={"steps_per_group": tp, "update_every": dp})
    trainer = Trainer(model, DATA, batch_size=32, callbacks=[log])
    ctx = RunContext(model, trainer, DATA, VAL, cfg, Callbacks([log]))
    METHODS[name](cfg).prune(ctx)
    return groups, log.rows, ctx


def test_layerwise_prunes_one_group_at_a_time_in_topological_order():
    tp = 4
    groups, rows, ctx = _observe("layerwise", tp=tp, dp=2)
    assert len(groups) >= 3 and len(rows) == len(groups) * tp
    full = [g.channels for g in groups]
    for step, alive in rows:
        window = (step - 1) // tp                   # the group being pruned at this step
        for i, n in enumerate(alive):
            if i < window:
                assert n == full[i] // 2, (step, i)   # earlier groups: done
            elif i > window:
                assert n == full[i], (step, i)        # later groups: untouched
    # each group reached the target inside its own window
    assert [alive[i] for i, (_, alive) in enumerate(rows[tp - 1::tp])] == [c // 2 for c in full]
    pruned = [h["group"] for h in ctx.history if h["phase"] == "prune"]
    assert pruned == [g.name for g in groups]
    # topological order: each group's first producer comes after the previous one's
    order = list(ctx.model.layers)
    firsts = [order.index(g.producers[0]) for g in groups]
    assert firsts == sorted(firsts)


def test_stepwise_prunes_all_groups_together_along_the_cubic_ramp():
    tp, dp = 4, 2
    groups, rows, _ = _observe("stepwise", tp=tp, dp=dp)
    total = len(groups) * tp
    full = [g.channels for g in groups]
    previous = full
    for step, alive in rows:
        assert all(a <= p for a, p in zip(alive, previous))     # masks only shrink
        previous = alive
        if step % dp == 0:
            s = cubic_sparsity(step, total, 0.5)
            assert all(a / c <= 1 - s + 1e-9 for a, c in zip(alive, full)), step
    assert rows[-1][1] == [c // 2 for c in full]
    changed_together = [i for i in range(1, len(rows)) if rows[i][1] != rows[i - 1][1]]
    assert any(sum(a != b for a, b in zip(rows[i][1], rows[i - 1][1])) > 1 for i in changed_together)


def test_one_shot_prunes_everything_at_the_last_step_only():
    groups, rows, _ = _observe("one-shot")
    full = [g.channels for g in groups]
    assert all(alive == full for _, alive in rows[:-1])
    assert rows[-1][1] == [c // 2 for c in full]


def test_layerwise_update_steps_follow_the_window_and_interval():
    tp, dp = 6, 4
    updates = [(t, layerwise_update(t, tp, dp)) for t in range(1, 3 * tp + 1)]
    got = [(t, g) for t, g in updates if g is not None]
    expected = [(i * tp + local, i) for i in range(3) for local in (dp, tp)]
    assert got == expected


def test_cubic_ramp_starts_at_zero_ends_at_target_and_rises():
    values = [cubic_sparsity(t, 20, 0.7) for t in range(21)]
    assert values[0] == 0.0 and values[-1] == pytest.approx(0.7)
    assert all(b >= a for a, b in zip(values, values[1:]))
