"""Checkpoints: round trip to identical integers; unsafe, corrupt and foreign files refused."""

import os
import pickle
import zipfile

import pytest
import torch

import toolchain
from exporters.errors import FoldlineError
from toolchain.pruning import channel_groups, remove_channels

from tests.test_tc_common import SHAPE, qat, synthetic_batch


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(5)
    net = toolchain.build("resnet", input_shape=SHAPE)
    def masks(m, step):
        if step == 1:
            for group in channel_groups(m):
                mask = torch.ones(group.channels)
                mask[::3] = 0
                group.set_mask(mask)
    return qat(net, steps=3, before_step=masks)


@pytest.mark.parametrize("removed", [False, True])
def test_round_trip_gives_identical_integers(model, tmp_path, removed):
    net = remove_channels(model, round_to=2) if removed else model
    path = toolchain.save(net, tmp_path / "m.pt", metadata={"method": "test", "steps": [1, 2]})
    loaded = toolchain.load(path)
    x, _ = synthetic_batch(32, seed=3)
    assert torch.equal(toolchain.integer_forward(loaded, x), toolchain.integer_forward(net, x))
    assert loaded.spec() == net.spec()
    for key, value in net.state_dict().items():  # masks and quantizer statistics included
        assert torch.equal(loaded.state_dict()[key], value), key
    assert toolchain.load_metadata(path) == {"method": "test", "steps": [1, 2]}
    blob = torch.load(path, weights_only=True)  # plain data + tensors only
    assert set(blob) == {"format", "spec", "state_dict", "metadata"}


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "foldline-checkpoint/1", "spec": _Exploit(marker)}, path)
    with pytest.raises(toolchain.CheckpointError, match="code execution") as err:
        toolchain.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Exploit(marker)))
    with pytest.raises(toolchain.CheckpointError, match=str(raw)):
        toolchain.load(raw)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all\n", b"PK\x03\x04garbage" * 10])
def test_corrupt_or_foreign_bytes_are_refused(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(toolchain.CheckpointError, match="bad.pt") as err:
        toolchain.load(path)
    assert isinstance(err.value, FoldlineError) and "\n" not in str(err.value)


def test_truncated_checkpoint_is_refused(model, tmp_path):
    path = toolchain.save(model, tmp_path / "m.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(toolchain.CheckpointError, match="m.pt"):
        toolchain.load(path)


def test_pytorch_file_that_is_not_foldline_is_refused(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save({"weight": torch.ones(3)}, path)
    with pytest.raises(toolchain.CheckpointError, match="not a Foldline checkpoint"):
        toolchain.load(path)
    with pytest.raises(toolchain.CheckpointError, match="no such file"):
        toolchain.load(tmp_path / "missing.pt")


def test_state_dict_not_matching_the_spec_is_refused(model, tmp_path):
    path = tmp_path / "m.pt"
    blob = {"format": "foldline-checkpoint/1", "spec": model.spec(), "state_dict": {}, "metadata": {}}
    torch.save(blob, path)
    with pytest.raises(toolchain.CheckpointError, match="damaged"):
        toolchain.load(path)
    assert zipfile.is_zipfile(path)


def test_only_plain_metadata_is_saved(model, tmp_path):
    with pytest.raises(toolchain.CheckpointError, match="metadata.obj"):
        toolchain.save(model, tmp_path / "m.pt", metadata={"obj": object()})
    with pytest.raises(toolchain.CheckpointError, match="QuantNet"):
        toolchain.save(torch.nn.Linear(2, 2), tmp_path / "m.pt")
