"""A ``steps_per_epoch`` stream's position saved with each checkpoint, set again on resume.

Grain's iterators tell where they stand (``get_state()``) and can be put back there
(``set_state()``); a checkpoint keeps that state in ``extra-<process>.json`` (covered by its
manifest), so a resume neither re-reads the batches trained on nor depends on the source
giving them again. An iterator without a state is advanced by reading, as before.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import jaxnet as jn
from jaxnet.data.stream import StreamError, iterator_position
from jaxnet.train import CheckpointWarning
from tests.helpers_training import (
    assert_same_leaves,
    checkpoint_extra,
    chunks,
    fit_kwargs,
    load_digits,
    small_net,
)

BATCH, STEPS = 64, 7


@pytest.fixture(scope="module")
def batches():
    digits = load_digits()
    return chunks(digits.x_train, digits.y_train, BATCH, count=1216 // BATCH)  # 19 whole ones


def _kw(**extra):
    """``fit_kwargs`` without metrics: these runs are compared by their parameters."""
    return fit_kwargs(metrics=None, **extra)


class Counted:
    """An endless iterator over ``batches`` with Grain's ``get_state`` / ``set_state``, that
    counts the batches it hands out (a resume by reading would hand out the skipped ones)."""

    def __init__(self, batches, refuse=False):
        self.batches, self.index, self.handed, self.refuse = batches, 0, 0, refuse

    def __iter__(self):
        return self

    def __next__(self):
        batch = self.batches[self.index % len(self.batches)]
        self.index, self.handed = self.index + 1, self.handed + 1
        return batch

    def get_state(self):
        return {"next_index": self.index}

    def set_state(self, state):
        if self.refuse:
            raise ValueError("unknown state layout")
        self.index = state["next_index"]


def _fit(source, run_dir, epochs, resume=False):
    stream = jn.data.stream(source, steps_per_epoch=STEPS)
    return jn.train.fit(small_net(), stream, run_dir=run_dir, resume=resume, **_kw(epochs=epochs))


def test_a_grain_pipeline_resumes_from_its_saved_iterator_state(batches, tmp_path):
    import grain

    def pipeline():
        shuffled = grain.MapDataset.source(batches).shuffle(seed=0).repeat()
        return shuffled.to_iter_dataset()

    whole = _fit(pipeline(), tmp_path / "whole", 4)
    _fit(pipeline(), tmp_path / "cut", 2)
    saved = checkpoint_extra(tmp_path / "cut", 2)
    # Grain's own state, after the 2 * 7 batches trained on (one more is read by jn.data.stream
    # for its first batch, from an iterator of its own)
    assert saved == {"batches": 14, "iterator": {"state": {"next_index": 14}}}
    resumed = _fit(pipeline(), tmp_path / "cut", 4, resume=True)
    assert_same_leaves(resumed.train_state.params, whole.train_state.params)
    assert [r["step"] for r in resumed.history] == [7, 14, 21, 28]


def test_a_resume_sets_the_position_instead_of_reading_the_batches_again(batches, tmp_path):
    whole = _fit(Counted(batches), tmp_path / "whole", 5)
    _fit(Counted(batches), tmp_path / "cut", 3)
    source = Counted(batches)
    resumed = _fit(source, tmp_path / "cut", 5, resume=True)
    assert_same_leaves(resumed.train_state.params, whole.train_state.params)
    assert source.index == 5 * STEPS  # where the uninterrupted run's iterator ended
    assert source.handed == 1 + 2 * STEPS  # the first batch (for jn.data.stream), 2 epochs


def test_without_a_state_the_resume_reads_the_batches_trained_on(batches, tmp_path):
    class Plain:  # the same batches, without get_state: nothing to save
        def __init__(self):
            self.inner = Counted(batches)

        def __iter__(self):
            return self

        def __next__(self):
            return next(self.inner)

    assert iterator_position(Plain()) is None
    whole = _fit(Plain(), tmp_path / "whole", 3)
    _fit(Plain(), tmp_path / "cut", 1)
    assert not (tmp_path / "cut" / "checkpoints" / "1" / "extra-0.json").exists()
    source = Plain()
    resumed = _fit(source, tmp_path / "cut", 3, resume=True)
    assert_same_leaves(resumed.train_state.params, whole.train_state.params)
    assert source.inner.handed == 3 * STEPS  # epoch 1's batches (read again), and epochs 2, 3


def test_a_damaged_position_is_caught_by_the_manifest(batches, tmp_path):
    _fit(Counted(batches), tmp_path, 2)
    (tmp_path / "checkpoints" / "2" / "extra-0.json").write_text('{"batches": 14}')
    with pytest.warns(CheckpointWarning, match=r"passing over checkpoint .*2: file extra-0.json"):
        resumed = _fit(Counted(batches), tmp_path, 2, resume=True)  # from epoch 1
    assert [r["epoch"] for r in resumed.history] == [1, 2]


def test_an_iterator_that_refuses_its_saved_state_is_a_clear_error(batches, tmp_path):
    _fit(Counted(batches), tmp_path, 1)
    with pytest.raises(
        StreamError,
        match=r"^stream: the train iterator refused the position saved in "
        r"checkpoints/1/extra-0\.json \(ValueError: unknown state layout\); was the pipeline "
        r"changed\?$",
    ):
        _fit(Counted(batches, refuse=True), tmp_path, 2, resume=True)


def test_a_position_of_other_steps_per_epoch_is_not_used(batches, tmp_path):
    _fit(Counted(batches), tmp_path, 2)  # saved at 14 batches
    source = Counted(batches)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stream = jn.data.stream(source, steps_per_epoch=5)  # 2 epochs are now 10 batches
        jn.train.fit(small_net(), stream, run_dir=tmp_path, resume=True, **_kw(epochs=3))
    assert source.handed == 3 * 5  # 10 read and dropped: the saved position is not at 10


def test_checkpointer_extra_round_trip_and_refusals(tmp_path):
    checkpoints = jn.train.Checkpointer(tmp_path)
    checkpoints.save(1, {"w": np.ones(2)}, extra={"batches": 7, "iterator": {"bytes": "e30="}})
    checkpoints.save(2, {"w": np.ones(2)})
    assert checkpoints.extra(1) == {"batches": 7, "iterator": {"bytes": "e30="}}
    assert checkpoints.extra(2) is None
    with pytest.raises(
        TypeError, match=r"^save: extra must be a dict \(a JSON object\), got list$"
    ):
        checkpoints.save(3, {"w": np.ones(2)}, extra=[1])
    with pytest.raises(TypeError, match=r"^save: extra must hold only JSON values"):
        checkpoints.save(3, {"w": np.ones(2)}, extra={"x": float("nan")})
    assert checkpoints.steps() == [1, 2]


def test_a_grain_data_loader_resumes_from_its_saved_state_bytes(batches, tmp_path):
    import grain

    def loader():
        sampler = grain.samplers.IndexSampler(len(batches), shuffle=True, seed=0, num_epochs=None)
        return grain.DataLoader(data_source=batches, sampler=sampler, worker_count=0)

    whole = _fit(loader(), tmp_path / "whole", 3)
    _fit(loader(), tmp_path / "cut", 1)
    saved = checkpoint_extra(tmp_path / "cut", 1)
    assert saved["batches"] == STEPS and set(saved["iterator"]) == {"bytes"}  # its JSON bytes
    resumed = _fit(loader(), tmp_path / "cut", 3, resume=True)
    assert_same_leaves(resumed.train_state.params, whole.train_state.params)


class Live(Counted):
    """An iterator whose ``get_state`` hands out its live state, which moves on with it."""

    def __init__(self, batches):
        super().__init__(batches)
        self.state = {"next_index": 0}

    def __next__(self):
        batch = super().__next__()
        self.state["next_index"] = self.index
        return batch

    def get_state(self):
        return self.state


def test_a_live_state_is_saved_as_it_was_at_the_epochs_end(batches, tmp_path):
    whole = _fit(Live(batches), tmp_path / "whole", 4)
    every = jn.train.Checkpointing(every=1)  # asynchronous: written while the next epoch reads
    stream = jn.data.stream(Live(batches), steps_per_epoch=STEPS)
    jn.train.fit(
        small_net(), stream, run_dir=tmp_path / "cut", checkpointing=every, **_kw(epochs=4)
    )
    saved = [checkpoint_extra(tmp_path / "cut", e) for e in (2, 3, 4)]
    assert [s["iterator"]["state"]["next_index"] for s in saved] == [14, 21, 28]
    for epoch in (2, 3):  # resume from an older checkpoint: the same run
        folder = tmp_path / f"from-{epoch}"
        _fit(Live(batches), folder, epoch)
        resumed = _fit(Live(batches), folder, 4, resume=True)
        assert_same_leaves(resumed.train_state.params, whole.train_state.params)
