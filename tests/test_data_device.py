"""Device-resident datasets (``jaxgan.data.device``): batches are pure functions of (seed, step)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.data import device
from jaxgan.data.batches import ImageBatches
from jaxgan.data.images import make_image_iterator

N, B, CRITIC = 50, 8, 2


def _source(seed=0, n=N, batch_size=B, draws=CRITIC, conditional=True):
  # Example i is the constant image i with label i % 10: a batch shows which examples it holds.
  images = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None], (n, 4, 4, 1)).copy()
  arrays = {"image": images, **({"label": np.arange(n, dtype=np.int32) % 10} if conditional else {})}
  return device.DeviceBatches(arrays, seed=seed, batch_size=batch_size, draws_per_step=draws,
                              streams={"examples": tuple(arrays)}, num_classes=10 if conditional else None,
                              example_shape=(4, 4, 1))


def _ids(batch):
  return np.asarray(batch["image"][..., 0, 0, 0]).astype(int)


def test_a_batch_is_a_function_of_seed_and_step_alone():
  a, b = _source(), _source()
  for step in (0, 3, 17):
    np.testing.assert_array_equal(_ids(a.next(step)), _ids(b.next(step)))  # e.g. after a resume
  assert not np.array_equal(_ids(_source(seed=1).next(0)), _ids(a.next(0)))
  assert a.next(0)["image"].shape == (CRITIC, B, 4, 4, 1) and a.get_state() == {}


def test_every_example_is_drawn_once_per_epoch_and_all_are_reachable():
  source = _source()
  per_epoch = N // B  # 6 batches; 2 examples left over per epoch (drop_remainder)
  draws = np.concatenate([_ids(source.next(t)).reshape(-1, B) for t in range(3 * per_epoch // CRITIC)])
  for epoch in range(3):
    ids = draws[epoch * per_epoch:(epoch + 1) * per_epoch].ravel()
    assert len(set(ids)) == len(ids) == per_epoch * B  # no repeats within an epoch
  assert set(draws.ravel()) == set(range(N))  # reshuffled epochs reach the left-over examples too


def test_labels_stay_matched_to_their_images():
  batch = _source().next(5)
  np.testing.assert_array_equal(np.asarray(batch["label"]), _ids(batch) % 10)


def test_device_slices_under_an_axis_make_up_the_global_batch():
  source = _source()
  global_batch = source.next(4)
  per_device = jax.vmap(lambda _: source.batch_fn(source.device_data, jnp.int32(4), "d"), axis_name="d")(
      jnp.arange(4))
  assert per_device["image"].shape == (4, CRITIC, B // 4, 4, 4, 1)
  stitched = jnp.concatenate(list(per_device["image"]), axis=1)  # devices in order along the batch
  np.testing.assert_array_equal(np.asarray(stitched), np.asarray(global_batch["image"]))


def test_a_batch_larger_than_the_dataset_is_refused():
  with pytest.raises(ValueError, match="fewer than --batch_size=64"):
    _source(batch_size=64)


def test_prefetched_image_batches_resume_from_the_first_unconsumed_batch():
  def make():
    return ImageBatches(make_image_iterator(None, batch_size=4, resolution=8, seed=0), n_critic=2,
                        conditional=True, prefetch=2)
  first = make()
  for t in range(3):
    first.next(t)
  position = first.get_state()  # the thread has read ahead; the position is still after batch 3
  expected = [np.asarray(first.next(t)["image"]) for t in range(3, 5)]
  first.close()
  resumed = make()
  resumed.set_state(position)
  for want in expected:
    np.testing.assert_array_equal(np.asarray(resumed.next(0)["image"]), want)
  resumed.close()
