"""The method registry and the shared configuration/option handling."""

import pytest

from exporters.errors import FoldlineError
from toolchain.methods import METHODS, Method, MethodConfig, MethodError, get_method
from toolchain.methods import _registry
from toolchain.methods.channel import ChannelPruning, Layerwise, OneShot, Stepwise
from toolchain.methods.djpq import Djpq
from toolchain.methods.framework import RuleFramework, TwoStage
from toolchain.methods.increg import IncReg
from toolchain.methods.magnitude import IterativeMagnitude


def test_registry_holds_the_methods_by_their_names():
    assert METHODS == {"layerwise": Layerwise, "stepwise": Stepwise, "one-shot": OneShot,
                       "iterative-magnitude": IterativeMagnitude, "two-stage": TwoStage,
                       "rule-framework": RuleFramework, "increg": IncReg, "djpq": Djpq}
    for name, cls in METHODS.items():
        assert issubclass(cls, Method) and cls.name == name and cls.summary
    assert {cls.sparsity_kind for cls in METHODS.values()} == {"channels", "weights"}
    assert all(issubclass(METHODS[n], ChannelPruning) for n in ("layerwise", "stepwise", "one-shot"))


def test_a_misspelt_method_name_fails_with_the_choices():
    with pytest.raises(MethodError, match="unknown method 'layerwize'; available: layerwise") as e:
        get_method("layerwize")
    assert isinstance(e.value, FoldlineError)


def test_registry_rejects_duplicate_and_empty_names():
    class Twin(Method):
        name = "layerwise"

    class Nameless(Method):
        pass

    with pytest.raises(ImportError, match="duplicate"):
        _registry([Layerwise, Twin])
    with pytest.raises(ImportError, match="empty"):
        _registry([Nameless])


def test_a_misspelt_class_in_the_registry_list_fails_at_import():
    source = "from toolchain.methods.channel import Layerwise\n_registry([Layerwise, Layerwize])"
    with pytest.raises(NameError, match="Layerwize"):
        exec(source, {"_registry": _registry})


@pytest.mark.parametrize("kwargs, message", [
    ({"sparsity": -0.1}, "sparsity"), ({"sparsity": 1.0}, "sparsity"),
    ({"epochs": -1}, "epochs"), ({"lr": 0}, "lr"), ({"batch_size": 0}, "batch_size"),
    ({"round_to": 0}, "round_to"), ({"weight_bits": 1}, "weight_bits"),
    ({"act_bits": 9}, "act_bits"),
])
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(MethodError, match=message):
        MethodConfig(**kwargs)


def test_options_are_typed_from_strings_and_unknown_ones_refused():
    m = Layerwise(MethodConfig(options={"steps_per_group": "7", "remove": "false"}))
    assert m.options.steps_per_group == 7 and m.options.remove is False
    m = IterativeMagnitude(MethodConfig(options={"scan_ratios": "0.3, 0.6"}))
    assert m.options.scan_ratios == (0.3, 0.6)
    with pytest.raises(MethodError, match="unknown option 'iterations'"):
        Layerwise(MethodConfig(options={"iterations": 2}))
    with pytest.raises(MethodError, match="steps_per_group"):
        Layerwise(MethodConfig(options={"steps_per_group": "many"}))
    with pytest.raises(MethodError, match="steps_per_group must be >= 1"):
        Layerwise(MethodConfig(options={"steps_per_group": 0}))
    with pytest.raises(MethodError, match="max_ratio"):
        IterativeMagnitude(MethodConfig(options={"max_ratio": 1.5}))


def test_registry_is_exposed_as_toolchain_methods():
    import toolchain

    assert toolchain.METHODS is METHODS
