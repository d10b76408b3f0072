"""The shared training loop: determinism, step hooks, progress output, evaluation."""

import io

import torch

import toolchain
from toolchain.data import synthetic
from toolchain.progress import Progress
from toolchain.train import (Callbacks, Trainer, batches, configure_threads, evaluate, evaluate_integer,
                             seed_everything)

DATA = synthetic(80, shape=(1, 8, 8), seed=0)


def _trained(seed):
    seed_everything(seed)
    model = toolchain.build("mlp", input_shape=(1, 8, 8), hidden=(16,))
    Trainer(model, DATA, lr=1e-2, batch_size=16, seed=seed).train_steps(10)
    return model


def test_same_seed_same_weights_other_seed_other_weights():
    a, b, c = _trained(3), _trained(3), _trained(4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))


def test_every_sample_once_per_epoch_and_step_hooks_see_the_step():
    seen = []
    ys = []
    model = toolchain.build("mlp", input_shape=(1, 8, 8), hidden=(8,))
    t = Trainer(model, DATA, batch_size=16)
    orig = t._next_batch
    t._next_batch = lambda: (lambda b: ys.append(b[1]) or b)(orig())
    t.train_epochs(1, on_step=[lambda tr: seen.append(tr.step)])
    assert seen == list(range(1, t.steps_per_epoch + 1))
    assert sorted(torch.cat(ys).tolist()) == sorted(DATA.y.tolist())


def test_training_reduces_the_loss_and_an_extra_loss_is_added():
    model = toolchain.build("mlp", input_shape=(1, 8, 8), hidden=(16,))
    t = Trainer(model, DATA, lr=1e-2, batch_size=16)
    first = t.train_steps(5)
    later = t.train_steps(40)
    assert later < first
    big = Trainer(model, DATA, lr=0.0 + 1e-9, batch_size=16,
                  extra_loss=lambda m: torch.tensor(100.0))
    assert big.train_steps(2) > 100.0


def test_progress_is_silent_when_asked_and_plain_lines_off_a_terminal():
    quiet = io.StringIO()
    progress = Progress(quiet=True, file=quiet)
    model = toolchain.build("mlp", input_shape=(1, 8, 8), hidden=(8,))
    Trainer(model, DATA, batch_size=16, callbacks=[progress]).train_steps(3)
    progress.on_event("prune", "something")
    assert quiet.getvalue() == ""

    log = io.StringIO()                           # not a TTY: plain lines, no bar
    progress = Progress(file=log)
    Trainer(model, DATA, batch_size=16, callbacks=[progress]).train_steps(20, "finetune")
    progress.on_event("prune", "something")
    lines = log.getvalue().splitlines()
    assert lines[0] == "finetune: 20 steps" and lines[-1] == "prune: something"
    assert lines[-2].startswith("finetune: done in ") and "loss " in lines[-2]
    steps = [line for line in lines if "/20 steps" in line]
    assert [line.split()[1] for line in steps] == [f"{k}/20" for k in range(2, 20, 2)]  # every 10 %
    assert all("loss " in line and "batch accuracy " in line for line in steps)
    assert "\r" not in log.getvalue()              # no bar redraws in a log file


def test_callbacks_fan_out_and_skip_missing_hooks():
    calls = []

    class OnlyEvents:
        def on_event(self, phase, message):
            calls.append((phase, message))

    cb = Callbacks([OnlyEvents(), object()])
    cb.on_step_end("train", 1, 0.5, 0.25)
    cb.on_event("prune", "x")
    assert calls == [("prune", "x")]


def test_evaluate_counts_correct_predictions():
    class Oracle(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.one_hot(DATA.y[: len(x)], 10).float()

    assert evaluate(Oracle(), DATA) == 1.0
    assert list(batches(DATA, 32))[0][0].shape == (32, 1, 8, 8)


def test_integer_evaluation_matches_run_integer():
    model = _trained(0)
    integer = toolchain.to_integer_model(model)
    acc, pred = evaluate_integer(integer, DATA, batch_size=7)
    expected = toolchain.run_integer(integer, DATA.x).argmax(1)
    assert torch.equal(pred, expected)
    assert acc == float((expected == DATA.y).float().mean())


def test_threads_never_exceed_the_cpus():
    import os
    n = configure_threads()
    assert 1 <= n == torch.get_num_threads() <= (os.cpu_count() or 1)
    assert configure_threads(1) == 1
    configure_threads()
