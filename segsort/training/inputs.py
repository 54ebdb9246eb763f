"""This worker's stream of training batches, and the batch it pictures.

A single worker reads global batches in a fixed order given the seed,
however many GPUs it has, so runs on 1 and N GPUs see the same data.
Several workers read differently seeded streams, each advancing by one of
its batches per global batch.
"""

from segsort import console
from segsort import data
from segsort import summaries

# The settings of segsort.data.build_training_dataset that are the config's
# fields of the same name, passed as they are; the trainer decides the rest.
_CONFIG_SETTINGS = (
  'random_scale',
  'random_mirror',
  'random_crop',
  'random_colour',
  'ignore_label',
  'num_classes',
  'num_clusters',
  'kmeans_grid',
  'segment_groups',
  'apply_exif_orientation',
)


def _build_dataset(config, objective, placement, start_batch=0, outputs=None):
  """Builds this worker's input pipeline of its share of global batches.

  Args:
    config: The TrainConfig.
    objective: The segsort.objectives.Objective of the config's mode.
    placement: This process's segsort.training.distribution.Placement.
    start_batch: The number of this worker's batches to skip: the global
      batches consumed, step * iter_size, when resuming.
    outputs: The batch keys to compute (see
      segsort.data.build_training_dataset), or None for all.
  """
  return data.build_training_dataset(
    config.data_dir,
    config.data_list,
    config.input_size,
    config.batch_size // placement.num_workers,
    unsupervised=objective.needs_oversegmentation,
    seed=config.random_seed + placement.worker_index,
    deterministic=True,
    start_batch=start_batch,
    outputs=outputs,
    **{name: getattr(config, name) for name in _CONFIG_SETTINGS},
  )


def _first_pictures(dataset):
  """The first images of a stream, pictured at every summary step."""
  batch = next(iter(dataset.take(1)))
  return {
    name: tensor[: summaries.NUM_PICTURES] for name, tensor in batch.items()
  }


def training_stream(config, objective, placement, step, dataset=None):
  """Starts this worker's stream of batches at a step.

  Args:
    config: The TrainConfig.
    objective: The segsort.objectives.Objective of the config's mode.
    placement: This process's segsort.training.distribution.Placement.
    step: The step the run starts from (restored, or 0).
    dataset: Optional tf.data.Dataset of global batches to train on instead
      of the config's data list, read from its start.

  Returns:
    iterator: An iterator of this worker's batches, from `step` on.
    picture_batch: The batch pictured at every summary step (the first of
      the stream, with every key) on the chief, None on other workers.

  Raises:
    DataError: If the data list is malformed, or names files that are
      missing or do not decode (all of them on one line).
  """
  if dataset is not None:
    pictures = _first_pictures(dataset) if placement.is_chief else None
    return iter(dataset), pictures
  pictures = None
  if placement.is_chief:
    # Names every bad file before any step; also warns once of labels the
    # pipeline would ignore every epoch and of classes the list never holds.
    data.check_training_list(
      config.data_dir,
      config.data_list,
      config.num_classes,
      config.ignore_label,
      config.apply_exif_orientation,
      progress=console.progress,
      unsupervised=objective.needs_oversegmentation,
      segment_groups=config.segment_groups,
      input_size=config.input_size,
      random_scale=config.random_scale,
    )
    pictures = _first_pictures(_build_dataset(config, objective, placement))
  # Resumes the stream where the restored step left it.
  dataset = _build_dataset(
    config,
    objective,
    placement,
    start_batch=step * config.iter_size,
    outputs=objective.inputs,
  )
  return iter(dataset), pictures
