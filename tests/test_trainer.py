"""Tests of segsort.trainer: every mode, resume, restore, errors (CPU, mini).

Tracing a training step costs seconds, so tests share trained runs where
they only read them.
"""

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from network import builder
from network import checkpoints
from segsort import config as config_lib
from segsort import data
from segsort import train_softmax
from segsort import errors
from segsort import trainer as trainer_lib
from segsort.training import state as state_lib
from tools import make_synthetic_voc

INPUT_SIZE = (64, 64)
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
  """A generated VOC-layout set of 8 training images, with its train list."""
  root = str(tmp_path_factory.mktemp('voc'))
  lists = make_synthetic_voc.make_synthetic_voc(
    root, num_train=8, num_val=1, size=(72, 88), seed=0
  )
  return root, lists['train']


def make_config(voc, snapshot_dir, **overrides):
  """A small, quick config of the mini backbone on the generated set."""
  root, train_list = voc
  values = dict(
    mode='segsort',
    batch_size=2,
    data_dir=root,
    data_list=train_list,
    input_size=INPUT_SIZE,
    backbone='mini',
    num_steps=4,
    learning_rate=0.01,
    num_banks=0,
    num_classes=8,
    kmeans_iterations=3,
    save_pred_every=100,
    update_tb_every=100,
    snapshot_dir=str(snapshot_dir),
  )
  values.update(overrides)
  return config_lib.TrainConfig(**values)


def fixed_batches(voc, config):
  """The first two images, without augmentation, as every batch."""
  root, train_list = voc
  return (
    data.build_training_dataset(
      root,
      train_list,
      config.input_size,
      config.batch_size,
      random_scale=False,
      random_mirror=False,
      random_crop=False,
      num_classes=config.num_classes,
      unsupervised=config.mode == 'segsort_unsup',
      shuffle=False,
      seed=0,
    )
    .take(1)
    .cache()
    .repeat()
  )


def assert_same_values(expected_variables, actual_variables, exact=True):
  assert len(expected_variables) == len(actual_variables)
  for expected, actual in zip(expected_variables, actual_variables):
    name = getattr(expected, 'path', expected.name)
    if exact:
      np.testing.assert_array_equal(
        actual.numpy(), expected.numpy(), err_msg=name
      )
    else:
      np.testing.assert_allclose(
        actual.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6, err_msg=name
      )


@pytest.fixture(scope='module')
def trained_run(voc, tmp_path_factory):
  """A 2-step SegSort run with memory banks, read by several tests."""
  snapshot_dir = tmp_path_factory.mktemp('trained_run')
  trainer = trainer_lib.Trainer(
    make_config(voc, snapshot_dir, num_steps=2, num_banks=2, is_training=True)
  )
  trainer.train()
  return trainer


def restore_for_inference(prefix):
  """Restores a checkpoint as inference does (the contract with it)."""
  config = config_lib.load_config_for_checkpoint(prefix)
  network = builder.build_network_from_config(config)
  network(tf.zeros([1, 40, 48, 3]), training=False)
  tf.train.Checkpoint(model=network).restore(prefix).expect_partial()
  return config, network


@pytest.mark.parametrize('mode', ['segsort', 'segsort_unsup', 'softmax'])
def test_training_lowers_the_loss_and_inference_restores_it(
  voc, tmp_path, mode
):
  config = make_config(
    voc,
    tmp_path,
    mode=mode,
    num_steps=8,
    learning_rate=0.05,
    weight_decay=0.0,
    is_training=True,
  )
  trainer = trainer_lib.Trainer(config, dataset=fixed_batches(voc, config))
  first = trainer.train(until_step=1).losses['task_loss']
  result = trainer.train()
  assert result.step == 8
  assert np.isfinite(first) and result.losses['task_loss'] < 0.9 * first, (
    first,
    result.losses,
  )

  prefix = checkpoints.resolve_checkpoint(str(tmp_path))
  assert prefix == result.checkpoint == str(tmp_path / 'ckpt-8')
  restored_config, network = restore_for_inference(prefix)
  assert restored_config == config
  assert_same_values(trainer.network.variables, network.variables)
  assert network(tf.zeros([1, 40, 48, 3])).shape == (
    1,
    5,
    6,
    config.output_channels,
  )


def _assert_sgd_update(
  network, gradients, before, learning_rate, head_multiplier=10.0
):
  """One SGD step without momentum: the head at 10x the base rate."""
  head = {id(variable) for variable in network.head_variables}
  for variable, gradient, old in zip(
    network.trainable_variables, gradients, before
  ):
    rate = learning_rate * (head_multiplier if id(variable) in head else 1.0)
    np.testing.assert_allclose(
      variable.numpy(),
      old - rate * gradient.numpy(),
      rtol=1e-4,
      atol=1e-7,
      err_msg=variable.path,
    )


def test_update_rule_head_rate_and_iter_size(voc, tmp_path):
  """SGD with the head at 10x; iter_size averages micro-batch gradients."""
  plain = make_config(voc, tmp_path / 'plain', num_steps=1, momentum=0.0)
  dataset = fixed_batches(voc, plain)
  single = trainer_lib.Trainer(plain, dataset=dataset)
  accumulated = trainer_lib.Trainer(
    make_config(
      voc, tmp_path / 'accumulated', num_steps=1, momentum=0.0, iter_size=2
    ),
    dataset=dataset,
  )
  for source, target in zip(
    single.network.variables, accumulated.network.variables
  ):
    target.assign(source)
  losses, gradients = single.losses_and_gradients(next(iter(dataset)))
  assert losses['weight_decay'] > 0
  before = [variable.numpy() for variable in single.network.trainable_variables]

  single.train()
  accumulated.train()

  head = {id(variable) for variable in single.network.head_variables}
  assert head and len(head) < len(before)
  _assert_sgd_update(single.network, gradients, before, plain.learning_rate)
  assert_same_values(
    single.network.variables, accumulated.network.variables, exact=False
  )


def test_the_head_multiplier_sets_the_head_s_rate_alone(voc, tmp_path):
  config = make_config(
    voc,
    tmp_path,
    num_steps=1,
    momentum=0.0,
    head_learning_rate_multiplier=3.0,
  )
  dataset = fixed_batches(voc, config)
  trainer = trainer_lib.Trainer(config, dataset=dataset)
  _, gradients = trainer.losses_and_gradients(next(iter(dataset)))
  before = [
    variable.numpy() for variable in trainer.network.trainable_variables
  ]
  trainer.train()
  _assert_sgd_update(
    trainer.network, gradients, before, config.learning_rate, 3.0
  )


def test_warm_up_scales_the_first_updates(voc, tmp_path):
  config = make_config(
    voc, tmp_path / 'warm', num_steps=8, momentum=0.0, warmup_steps=4
  )
  dataset = fixed_batches(voc, config)
  trainer = trainer_lib.Trainer(config, dataset=dataset)
  _, gradients = trainer.losses_and_gradients(next(iter(dataset)))
  before = [
    variable.numpy() for variable in trainer.network.trainable_variables
  ]
  trainer.train(until_step=1)
  # Step 0 of 4 warm-up steps: a quarter of the poly rate (1 at step 0).
  _assert_sgd_update(
    trainer.network, gradients, before, config.learning_rate / 4
  )
  rates = [
    float(state_lib.poly_learning_rate(1.0, step, 8, 1.0, warmup_steps=4))
    for step in range(8)
  ]
  np.testing.assert_allclose(
    rates, [0.25, 0.5 * 7 / 8, 0.75 * 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8]
  )


def test_the_final_weights_are_their_moving_average(voc, tmp_path):
  config = make_config(voc, tmp_path / 'averaged', num_steps=4, ema_decay=0.3)
  dataset = fixed_batches(voc, config)
  trainer = trainer_lib.Trainer(config, dataset=dataset)
  weights = [
    [variable.numpy() for variable in trainer.network.trainable_variables]
  ]
  for step in (1, 2, 3):
    trainer.train(until_step=step)
    weights.append(
      [variable.numpy() for variable in trainer.network.trainable_variables]
    )
  # The decay rises to --ema_decay over the first steps (0.18, 0.25, 0.3).
  expected = weights[0]
  for step in (1, 2, 3):
    decay = min(0.3, (1.0 + step) / (10.0 + step))
    expected = [
      average - (1.0 - decay) * (average - weight)
      for average, weight in zip(expected, weights[step])
    ]
  for average, value in zip(trainer._state.weight_average, expected):
    np.testing.assert_allclose(average.numpy(), value, rtol=1e-5, atol=1e-6)
  prefix = trainer.train().checkpoint
  assert_same_values(
    trainer._state.weight_average, trainer.network.trainable_variables
  )
  assert not np.array_equal(
    trainer.network.trainable_variables[0].numpy(), weights[3][0]
  )
  # The last checkpoint holds the average as the model, which inference reads.
  restored = trainer_lib.Trainer(
    dataclass_replace(config, snapshot_dir=str(tmp_path / 'restored')),
    dataset=dataset,
  )
  restored.checkpoint.restore(prefix)
  assert_same_values(
    trainer.network.trainable_variables, restored.network.trainable_variables
  )

  # A resumed run continues the average of the checkpoint.
  resumed_config = dataclass_replace(config, snapshot_dir=str(tmp_path / 'two'))
  trainer_lib.Trainer(resumed_config, dataset=dataset).train(until_step=2)
  resumed = trainer_lib.Trainer(resumed_config, dataset=dataset)
  resumed.train()
  assert_same_values(
    trainer.network.trainable_variables,
    resumed.network.trainable_variables,
    exact=False,
  )


def _event_tags(directory):
  tags = set()
  for name in os.listdir(directory):
    events = tf.compat.v1.train.summary_iterator(os.path.join(directory, name))
    try:
      for event in events:
        tags.update(value.tag for value in event.summary.value)
    except tf.errors.DataLossError:
      # A writer killed mid-record leaves its last record truncated, which
      # TensorBoard skips too; the records before it are whole.
      pass
  return tags


def test_a_run_shorter_than_the_summary_interval_writes_its_last_step(
  trained_run,
):
  # 2 steps at --update_tb_every 100: the event file held no summary.
  directory = os.path.join(trained_run.config.snapshot_dir, 'tensorboard')
  steps = set()
  for name in os.listdir(directory):
    for event in tf.compat.v1.train.summary_iterator(
      os.path.join(directory, name)
    ):
      if any(value.tag == 'loss/total_loss' for value in event.summary.value):
        steps.add(event.step)
  assert steps == {2}
  assert 'images/embedding_pca' in _event_tags(directory)


def test_fewer_steps_than_a_run_has_reached_are_refused(
  voc, tmp_path, trained_run
):
  # With --overwrite_config, config.json claimed 1 step beside ckpt-2.
  snapshot_dir = tmp_path / 'run'
  shutil.copytree(trained_run.config.snapshot_dir, snapshot_dir)
  with pytest.raises(
    errors.TrainingError,
    match=r'--num_steps 1 is below step 2, which .*run has reached already; '
    r'give at least 2',
  ):
    trainer_lib.Trainer(
      make_config(
        voc,
        snapshot_dir,
        num_steps=1,
        num_banks=2,
        is_training=True,
        overwrite_config=True,
      )
    )
  assert config_lib.load_config(str(snapshot_dir)).num_steps == 2


def test_run_killed_with_sigkill_resumes_like_an_uninterrupted_run(
  voc, tmp_path
):
  """The CLI, killed with -9, resumes to the weights of a run never killed."""
  root, train_list = voc
  snapshot_dir = tmp_path / 'killed'
  command = [
    sys.executable,
    '-m',
    'segsort.train_segsort',
    '--data_dir',
    root,
    '--data_list',
    train_list,
    '--backbone',
    'mini',
    '--input_size',
    '64,64',
    '--batch_size',
    '2',
    '--num_steps',
    '1000000',
    '--learning_rate',
    '0.01',
    '--save_pred_every',
    '3',
    '--update_tb_every',
    '2',
    '--num_classes',
    '8',
    '--kmeans_iterations',
    '3',
    '--num_banks',
    '2',
    '--snapshot_dir',
    str(snapshot_dir),
    '--random_mirror',
    '--random_crop',
    '--random_scale',
    '--is_training',
  ]
  process = subprocess.Popen(
    command, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
  )
  try:
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
      prefix = tf.train.latest_checkpoint(str(snapshot_dir))
      if prefix is not None and int(prefix.rsplit('-', 1)[1]) >= 3:
        break
      time.sleep(0.1)
    assert process.poll() is None, process.stdout.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait()
  finally:
    if process.poll() is None:
      process.kill()
    process.stdout.close()

  tags = _event_tags(str(snapshot_dir / 'tensorboard'))
  assert {
    'loss/segsort_loss',
    'loss/weight_decay',
    'loss/total_loss',
    'learning_rate',
    'images_per_second',
    'images/input',
    'images/ground_truth',
    'images/embedding_pca',
    'images/kmeans_segments',
  } <= tags
  config = config_lib.load_config(str(snapshot_dir))
  latest = tf.train.latest_checkpoint(str(snapshot_dir))
  latest_step = int(latest.rsplit('-', 1)[1])
  resumed = trainer_lib.Trainer(config)
  assert resumed.restored_from == 'resumed:' + latest
  assert int(resumed.step.numpy()) == latest_step
  end_step = latest_step + 2
  assert resumed.train(until_step=end_step).step == end_step

  uninterrupted = trainer_lib.Trainer(
    dataclass_replace(config, snapshot_dir=str(tmp_path / 'uninterrupted'))
  )
  uninterrupted.train(until_step=end_step)
  assert_same_values(
    uninterrupted.network.variables, resumed.network.variables, exact=False
  )
  assert_same_values(
    uninterrupted.optimizer.variables, resumed.optimizer.variables, exact=False
  )


def dataclass_replace(config, **changes):
  values = config.to_dict()
  values.update(changes)
  return config_lib.TrainConfig.from_dict(values)


def test_restores_backbone_from_a_slim_checkpoint(voc, tmp_path):
  source = builder.build_network_from_config(
    make_config(voc, tmp_path / 'unused')
  )
  slim_prefix = str(tmp_path / 'imagenet' / 'resnet_v1_mini.ckpt')
  checkpoints.save_slim_resnet(source.backbone, slim_prefix)

  trainer = trainer_lib.Trainer(
    make_config(voc, tmp_path / 'run', restore_from=slim_prefix)
  )
  assert trainer.restored_from == 'slim:' + slim_prefix
  assert_same_values(
    source.backbone.variables, trainer.network.backbone.variables
  )
  assert not np.array_equal(
    source.head_variables[0].numpy(), trainer.network.head_variables[0].numpy()
  )


def test_incomplete_slim_checkpoint_is_refused_by_name(voc, tmp_path):
  prefix = str(tmp_path / 'partial.ckpt')
  tf.raw_ops.SaveV2(
    prefix=prefix,
    tensor_names=['resnet_v1_mini/conv1/weights'],
    shape_and_slices=[''],
    tensors=[tf.zeros([7, 7, 3, 32])],
  )
  with pytest.raises(
    checkpoints.CheckpointMismatchError, match='conv1/BatchNorm/gamma'
  ):
    trainer_lib.Trainer(make_config(voc, tmp_path / 'run', restore_from=prefix))


def test_stage_two_restores_model_and_bank_but_not_optimizer(
  voc, tmp_path, trained_run
):
  stage1_dir = trained_run.config.snapshot_dir
  stage2 = trainer_lib.Trainer(
    make_config(
      voc,
      tmp_path,
      num_steps=2,
      num_banks=2,
      learning_rate=1e-3,
      use_global_status=True,
      restore_from=stage1_dir,
    )
  )

  assert stage2.restored_from == 'checkpoint:' + os.path.join(
    stage1_dir, 'ckpt-2'
  )
  assert int(stage2.step.numpy()) == 0
  assert_same_values(trained_run.network.variables, stage2.network.variables)
  assert np.any(trained_run.objective.memory_bank.labels.numpy() >= 0)
  assert_same_values(
    trained_run.objective.memory_bank.variables,
    stage2.objective.memory_bank.variables,
  )
  momentum = [
    variable
    for variable in stage2.optimizer.variables
    if 'momentum' in variable.path
  ]
  assert momentum and not any(np.any(variable.numpy()) for variable in momentum)


def test_checkpoint_of_another_network_is_refused_by_name(
  voc, tmp_path, trained_run
):
  stage1_dir = trained_run.config.snapshot_dir
  with pytest.raises(
    checkpoints.CheckpointMismatchError,
    match=r'output/kernel: checkpoint \[1, 1, \d+, 32\] vs '
    r'model \[1, 1, \d+, 8\]',
  ) as raised:
    trainer_lib.Trainer(
      make_config(
        voc, tmp_path / 'softmax', mode='softmax', restore_from=stage1_dir
      )
    )
  # One line, with the flag that restores what does fit.
  assert '\n' not in str(raised.value)
  assert str(raised.value).endswith(
    'To start from its backbone alone, pass --not_restore_classifier'
  )

  backbone_only = trainer_lib.Trainer(
    make_config(
      voc,
      tmp_path / 'softmax_backbone',
      mode='softmax',
      not_restore_classifier=True,
      restore_from=stage1_dir,
    )
  )
  assert_same_values(
    trained_run.network.backbone.variables,
    backbone_only.network.backbone.variables,
  )


def test_snapshot_dir_of_another_config_is_refused(voc, tmp_path, trained_run):
  snapshot_dir = tmp_path / 'run'
  shutil.copytree(trained_run.config.snapshot_dir, snapshot_dir)
  changed = dict(num_steps=2, num_banks=2, is_training=True, learning_rate=0.5)
  with pytest.raises(errors.ConfigMismatchError) as raised:
    trainer_lib.Trainer(
      make_config(voc, snapshot_dir, embedding_dim=16, **changed)
    )
  message = str(raised.value)
  assert '\n' not in message
  assert 'learning_rate: 0.01 -> 0.5' in message
  assert 'embedding_dim: 32 -> 16' in message
  # It advised --overwrite_config, which then failed to restore.
  assert message.endswith(
    'Use a new --snapshot_dir: --embedding_dim changes the variables of the '
    'run, so that its checkpoints cannot be resumed (not even with '
    "--overwrite_config)."
  )
  with pytest.raises(errors.ConfigMismatchError, match='not even with'):
    trainer_lib.Trainer(
      make_config(
        voc, snapshot_dir, embedding_dim=16, overwrite_config=True, **changed
      )
    )
  # Its checkpoints hold no weight average to continue.
  with pytest.raises(
    errors.ConfigMismatchError, match='--ema_decay changes the variables'
  ):
    trainer_lib.Trainer(
      make_config(
        voc, snapshot_dir, ema_decay=0.9, overwrite_config=True, **changed
      )
    )
  with pytest.raises(errors.ConfigMismatchError) as raised:
    trainer_lib.Trainer(make_config(voc, snapshot_dir, **changed))
  assert str(raised.value).endswith(
    'Use a new --snapshot_dir, or pass --overwrite_config to replace its '
    'config.json and resume its latest checkpoint with these settings.'
  )

  resumed = trainer_lib.Trainer(
    make_config(voc, snapshot_dir, overwrite_config=True, **changed)
  )
  assert int(resumed.step.numpy()) == 2
  assert config_lib.load_config(str(snapshot_dir)).learning_rate == 0.5
  # The settings of the first two steps are kept beside it, also through a
  # second --overwrite_config at the same step (whose settings trained none).
  trainer_lib.Trainer(
    make_config(
      voc,
      snapshot_dir,
      overwrite_config=True,
      **dict(changed, learning_rate=0.7),
    )
  )
  assert (
    config_lib.load_config(str(snapshot_dir / 'config.until_step_2.json'))
    == trained_run.config
  )
  # Only what differs is named: softmax's classes were not changed.
  with pytest.raises(errors.ConfigMismatchError) as raised:
    trainer_lib.Trainer(
      make_config(
        voc, snapshot_dir, mode='softmax', overwrite_config=True, **changed
      )
    )
  assert str(raised.value).endswith(
    'Use a new --snapshot_dir: the mode (its training entry point) changes '
    'the variables of the run, so that its checkpoints cannot be resumed '
    '(not even with --overwrite_config).'
  )


def test_a_memory_bank_of_another_shape_is_refused_with_overwrite_config(
  voc, tmp_path, trained_run
):
  # The bank's shape is --num_banks by clusters times --batch_size: it
  # failed at restore, blaming --backbone, --head, --embedding_dim or
  # --num_classes.
  snapshot_dir = tmp_path / 'run'
  shutil.copytree(trained_run.config.snapshot_dir, snapshot_dir)

  def resume(**changed):
    fields = dict(num_steps=3, num_banks=2, is_training=True)
    fields.update(changed)
    return trainer_lib.Trainer(
      make_config(voc, snapshot_dir, overwrite_config=True, **fields)
    )

  for changed in ({'batch_size': 4}, {'num_banks': 3}, {'num_clusters': 3}):
    (name,) = changed
    with pytest.raises(
      errors.ConfigMismatchError,
      match=r"Use a new --snapshot_dir: --%s \(the memory bank's shape\) "
      r'changes the variables of the run' % name,
    ):
      resume(**changed)
  # The same number of clusters in another grid, or no bank: resumed.
  assert resume(num_clusters=(25, 1)).restored_from.startswith('resumed:')
  assert resume(num_banks=0).restored_from.startswith('resumed:')


def test_a_run_without_its_config_json_is_not_resumed_with_any_settings(
  voc, tmp_path, trained_run
):
  # It resumed with any flags and wrote them as the whole run's settings.
  snapshot_dir = tmp_path / 'run'
  shutil.copytree(trained_run.config.snapshot_dir, snapshot_dir)
  os.remove(snapshot_dir / 'config.json')
  fields = dict(num_steps=3, num_banks=2, is_training=True, learning_rate=0.5)
  with pytest.raises(
    errors.ConfigMismatchError,
    match=r'holds checkpoint ckpt-2 but no config\.json: what it was trained '
    r'with is unknown\. Use a new --snapshot_dir, or pass --overwrite_config',
  ):
    trainer_lib.Trainer(make_config(voc, snapshot_dir, **fields))
  resumed = trainer_lib.Trainer(
    make_config(voc, snapshot_dir, overwrite_config=True, **fields)
  )
  assert resumed.restored_from.startswith('resumed:')


def test_resuming_a_damaged_checkpoint_is_named_in_one_line(
  voc, tmp_path, trained_run
):
  snapshot_dir = tmp_path / 'run'
  shutil.copytree(trained_run.config.snapshot_dir, snapshot_dir)
  for name in os.listdir(snapshot_dir):
    if '.data-' in name:
      os.remove(snapshot_dir / name)
  with pytest.raises(
    checkpoints.CheckpointMismatchError,
    match=r'Cannot read checkpoint .*ckpt-2 \(a file of it is missing',
  ):
    trainer_lib.Trainer(
      make_config(voc, snapshot_dir, num_steps=2, num_banks=2, is_training=True)
    )


def test_a_run_whose_latest_checkpoint_is_lost_is_not_trained_over(
  voc, tmp_path
):
  # tf.train.latest_checkpoint gave None for these states: the run started
  # from random weights and wrote over ckpt-1 and ckpt-2.
  snapshot_dir = tmp_path / 'run'
  config = make_config(voc, snapshot_dir, num_steps=2, save_pred_every=1)
  trainer_lib.Trainer(config).train()
  first_bytes = (snapshot_dir / 'ckpt-1.index').read_bytes()
  os.remove(snapshot_dir / 'ckpt-2.index')
  with pytest.raises(
    errors.TrainingError,
    match=r'checkpoint names ckpt-2 as the latest checkpoint, but .*'
    r'ckpt-2\.index is missing, so the run cannot resume; name an intact one '
    r'\(ckpt-1\) on its model_checkpoint_path line',
  ):
    trainer_lib.Trainer(config)
  os.remove(snapshot_dir / 'checkpoint')
  with pytest.raises(
    errors.TrainingError,
    match=r'holds checkpoints \(ckpt-1\) but no "checkpoint" file listing '
    r'them: training would start from random weights and write over them',
  ):
    trainer_lib.Trainer(config)
  assert (snapshot_dir / 'ckpt-1.index').read_bytes() == first_bytes
  # As after a divergence that unlisted every checkpoint: starts again.
  again = trainer_lib.Trainer(
    make_config(
      voc,
      snapshot_dir,
      num_steps=2,
      save_pred_every=1,
      overwrite_config=True,
    )
  )
  assert again.restored_from == 'scratch'


def test_non_finite_loss_stops_without_saving(voc, tmp_path):
  trainer = trainer_lib.Trainer(
    make_config(
      voc, tmp_path, num_steps=20, learning_rate=1e30, save_pred_every=1
    )
  )
  with pytest.raises(errors.NonFiniteLossError) as raised:
    trainer.train()
  failed_step = raised.value.step
  assert 'step %d' % failed_step in str(raised.value)
  saved_steps = [
    int(name.split('-')[1].split('.')[0])
    for name in os.listdir(tmp_path)
    if name.endswith('.index')
  ]
  assert max(saved_steps, default=0) < failed_step
  # Every checkpoint on disk, listed or no longer listed, is finite.
  for saved_step in saved_steps:
    reader = tf.train.load_checkpoint(str(tmp_path / ('ckpt-%d' % saved_step)))
    for name, dtype in reader.get_variable_to_dtype_map().items():
      if dtype.is_floating:
        assert np.all(np.isfinite(reader.get_tensor(name))), (saved_step, name)


def _softmax_argv(voc, snapshot_dir, learning_rate, **flags):
  root, train_list = voc
  argv = [
    '--data_dir',
    root,
    '--data_list',
    train_list,
    '--backbone',
    'mini',
    '--batch_size',
    '2',
    '--input_size',
    '64,64',
    '--num_classes',
    '4',
    '--is_training',
    '--snapshot_dir',
    str(snapshot_dir),
    '--learning_rate',
    str(learning_rate),
  ]
  for name, value in flags.items():
    argv += ['--' + name, str(value)]
  return argv


def test_divergence_advice_works_when_followed_literally(voc, tmp_path):
  """Softmax at --learning_rate 30 diverges; its advice, followed, trains."""
  argv = _softmax_argv(
    voc, tmp_path, 30, num_steps=4, save_pred_every=1, update_tb_every=100
  )
  with pytest.raises(SystemExit) as raised:
    train_softmax.main(argv)
  message = str(raised.value)
  assert message.startswith('error: Training diverged at step 2 (total loss')
  assert '\n' not in message
  # ckpt-1 holds the weights whose loss diverged at step 2: kept on disk,
  # no longer the latest.
  assert 'ckpt-1' in message and os.path.exists(tmp_path / 'ckpt-1.index')
  assert tf.train.latest_checkpoint(str(tmp_path)) is None
  advice = (
    re.search(
      r'run the same command with (--learning_rate \S+ '
      r'--overwrite_config)',
      message,
    )
    .group(1)
    .split()
  )
  assert advice == ['--learning_rate', '0.001', '--overwrite_config']
  train_softmax.main(argv + advice)
  latest = tf.train.latest_checkpoint(str(tmp_path))
  assert latest.endswith('ckpt-4')
  assert config_lib.load_config(str(tmp_path)).learning_rate == 0.001


def test_a_run_whose_loss_explodes_does_not_end_quietly(voc, tmp_path):
  """At --learning_rate 3 the loss reaches 1e4 within 6 steps."""
  config = config_lib.TrainConfig.from_flags(
    _softmax_argv(
      voc, tmp_path, 3, num_steps=6, save_pred_every=100, update_tb_every=100
    ),
    mode='softmax',
  )
  with pytest.raises(errors.DivergenceError) as raised:
    trainer_lib.Trainer(config).train()
  assert raised.value.step == 6
  assert 'starts again from the first step' in str(raised.value)
  assert not [name for name in os.listdir(tmp_path) if name.endswith('.index')]


def test_resume_after_divergence_starts_from_the_last_healthy_checkpoint(
  voc, tmp_path
):
  trainer = trainer_lib.Trainer(
    make_config(voc, tmp_path, num_steps=6, save_pred_every=1)
  )
  losses = iter([3.0, 2.0, 25.0, 4.0, 900.0])
  watch = trainer._health  # pylint: disable=protected-access
  watch.check = lambda step, _, check=watch.check: check(
    step, {'total_loss': next(losses)}
  )
  with pytest.raises(errors.DivergenceError) as raised:
    trainer.train()
  # Step 3's loss, 25, is over 10x the level 2: it vouches for no
  # checkpoint; step 4's does, for ckpt-3 and before; step 5's diverged.
  assert raised.value.step == 5
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith('ckpt-3')
  assert 'resumes from %s' % os.path.join(str(tmp_path), 'ckpt-3') in str(
    raised.value
  )
  assert os.path.exists(tmp_path / 'ckpt-4.index')


def test_random_weights_with_frozen_batch_norm_are_warned_of(
  voc, tmp_path, caplog
):
  # Such a run diverged, and the advice to lower the rate did not help.
  with caplog.at_level(logging.WARNING):
    trainer_lib.Trainer(make_config(voc, tmp_path / 'frozen'))
  assert (
    'No --restore_from: training from random weights; BatchNorm keeps its '
    'initial statistics' in caplog.text
  )
  assert 'pass --is_training' in caplog.text
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    trainer_lib.Trainer(make_config(voc, tmp_path / 'free', is_training=True))
  assert 'No --restore_from: training from random weights\n' in caplog.text
  assert '--is_training' not in caplog.text
  # An evaluation list alone evaluates nothing: said, not silent.
  caplog.clear()
  eval_list = str(tmp_path / 'val.txt')
  with caplog.at_level(logging.WARNING):
    trainer_lib.Trainer(
      make_config(voc, tmp_path / 'unevaluated', eval_list=eval_list)
    )
  assert (
    '--eval_list %s is not evaluated: give --eval_every N as well' % eval_list
    in caplog.text
  )


def test_missing_snapshot_dir_and_missing_gpus_are_refused(voc, tmp_path):
  with pytest.raises(errors.TrainingError, match='--snapshot_dir'):
    trainer_lib.Trainer(make_config(voc, ''))
  with pytest.raises(errors.TrainingError, match='--num_gpu 2'):
    trainer_lib.Trainer(make_config(voc, tmp_path, num_gpu=2))


@pytest.mark.parametrize(
  'tf_config, message',
  [
    ('{"cluster": {"worker": ["localhost:1"]', 'TF_CONFIG is not JSON: '),
    ('[]', 'TF_CONFIG needs a "cluster" and a "task"'),
    (
      '{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", '
      '"index": 5}}',
      'TF_CONFIG: task {"type": "worker", "index": 5} is not in its cluster '
      '(worker: 2)',
    ),
    (
      '{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
      'is not in its cluster (worker: 1)',
    ),
  ],
)
def test_a_bad_tf_config_is_named_before_any_work(
  voc, tmp_path, monkeypatch, tf_config, message
):
  """TensorFlow's own errors were tracebacks from inside the strategy."""
  monkeypatch.setenv('TF_CONFIG', tf_config)
  with pytest.raises(errors.TrainingError, match=re.escape(message)):
    trainer_lib.Trainer(make_config(voc, tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_a_run_that_cannot_start_leaves_the_directory_free(voc, tmp_path):
  with pytest.raises(errors.DataError, match='missing.txt'):
    trainer_lib.Trainer(
      make_config(voc, tmp_path, data_list=str(tmp_path / 'missing.txt'))
    )
  assert not os.path.exists(tmp_path / 'config.json')


def test_mixed_precision_trains_a_float32_checkpoint(voc, tmp_path):
  config = make_config(
    voc, tmp_path, num_steps=2, mixed_precision=True, num_banks=2
  )
  trainer = trainer_lib.Trainer(config)
  assert {layer.compute_dtype for layer in trainer.network.head.layers} == {
    'float16',
    'float32',
  }
  result = trainer.train()
  assert np.isfinite(result.losses['total_loss'])
  _, network = restore_for_inference(result.checkpoint)
  assert {layer.compute_dtype for layer in network.head.layers} == {'float32'}
  assert_same_values(trainer.network.variables, network.variables)


def _lines_with_a_truncated_image(voc, tmp_path, index):
  """The training list's lines, line `index` naming a truncated copy of its
  image (tmp_path/cut.jpg); returns them and that copy's path."""
  root, train_list = voc
  with open(train_list) as stream:
    lines = [line for line in stream.read().split('\n') if line.strip()]
  image, label = lines[index].split()
  with open(os.path.join(root, image), 'rb') as stream:
    contents = stream.read()
  cut = tmp_path / 'cut.jpg'
  cut.write_bytes(contents[: len(contents) // 2])
  lines[index] = '%s %s' % (cut, label)
  return lines, cut


def test_a_truncated_jpeg_stops_the_cli_with_one_line(voc, tmp_path):
  """A file found bad only when read ends the run with its list line."""
  root, _ = voc
  lines, cut = _lines_with_a_truncated_image(voc, tmp_path, 4)
  list_path = tmp_path / 'list.txt'
  list_path.write_text('\n'.join(lines) + '\n')
  snapshot_dir = tmp_path / 'run'
  completed = subprocess.run(
    [
      sys.executable,
      '-m',
      'segsort.train_segsort',
      '--data_dir',
      root,
      '--data_list',
      str(list_path),
      '--backbone',
      'mini',
      '--input_size',
      '64,64',
      '--batch_size',
      '2',
      '--num_steps',
      '20',
      '--save_pred_every',
      '1',
      '--num_classes',
      '8',
      '--kmeans_iterations',
      '3',
      '--snapshot_dir',
      str(snapshot_dir),
    ],
    cwd=REPOSITORY,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'),
  )
  assert completed.returncode != 0
  stderr = completed.stderr
  assert 'Traceback' not in stderr, stderr[-3000:]
  error_lines = [
    line for line in stderr.split('\n') if line.startswith('error: ')
  ]
  assert len(error_lines) == 1, stderr[-3000:]
  assert (
    '%s: line 5: Cannot decode image %s' % (list_path, cut) in (error_lines[0])
  )
  # Whatever was saved before is whole.
  if os.path.isdir(snapshot_dir):
    for name in os.listdir(snapshot_dir):
      if name.endswith('.index'):
        tf.train.load_checkpoint(str(snapshot_dir / name[: -len('.index')]))


def test_resume_rebuilds_the_stream_without_checkpointing_it(voc, tmp_path):
  """With iter_size 2, a resumed run trains like an uninterrupted one."""
  config = make_config(
    voc,
    tmp_path / 'resumed',
    num_steps=4,
    iter_size=2,
    random_scale=True,
    random_mirror=True,
    random_crop=True,
    is_training=True,
    num_banks=2,
  )
  first = trainer_lib.Trainer(config)
  prefix = first.train(until_step=2).checkpoint
  # The checkpoint holds no input pipeline, only the run's variables.
  names = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
  assert not [name for name in names if 'iterator' in name.lower()], names
  resumed = trainer_lib.Trainer(config)
  assert resumed.restored_from == 'resumed:' + prefix
  resumed.train()

  uninterrupted = trainer_lib.Trainer(
    dataclass_replace(config, snapshot_dir=str(tmp_path / 'uninterrupted'))
  )
  uninterrupted.train()
  assert_same_values(
    uninterrupted.network.variables, resumed.network.variables, exact=False
  )
  assert_same_values(
    uninterrupted.optimizer.variables, resumed.optimizer.variables, exact=False
  )
  assert_same_values(
    uninterrupted.objective.memory_bank.variables,
    resumed.objective.memory_bank.variables,
    exact=False,
  )


class _CountingValue:
  """A loss value that counts how often it is fetched to the host."""

  def __init__(self, value, fetches):
    self._value, self._fetches = value, fetches

  def __float__(self):
    self._fetches.append(1)
    return float(self._value)


def test_losses_are_fetched_only_on_summary_steps_and_at_the_end(voc, tmp_path):
  config = make_config(voc, tmp_path, num_steps=5, update_tb_every=100)
  trainer = trainer_lib.Trainer(config, dataset=fixed_batches(voc, config))
  train_step = trainer._train_step  # pylint: disable=protected-access
  fetches = []

  def counting_train_step(iterator):
    losses, non_finite = train_step(iterator)
    return (
      {name: _CountingValue(value, fetches) for name, value in losses.items()},
      non_finite,
    )

  trainer._train_step = counting_train_step  # pylint: disable=protected-access
  result = trainer.train()
  assert result.step == 5 and np.isfinite(result.losses['total_loss'])
  # At the first step (the level divergence is measured against) and at the
  # last, for each of the three loss terms.
  assert len(fetches) == 6


def test_a_step_the_loss_scale_optimizer_skips_does_not_advance(voc, tmp_path):
  config = make_config(
    voc, tmp_path, num_steps=3, mixed_precision=True, ema_decay=0.5
  )
  trainer = trainer_lib.Trainer(config, dataset=fixed_batches(voc, config))
  weights = [variable.numpy() for variable in trainer.network.variables]
  averages = [average.numpy() for average in trainer._state.weight_average]
  learning_rate = float(trainer.current_learning_rate())
  # float16 gradients overflow at this scale: the optimizer skips the update.
  trainer.optimizer.dynamic_scale.assign(2.0**40)
  _, non_finite = trainer._train_step(trainer._iterator)
  assert float(non_finite) == 0.0
  assert int(trainer.step.numpy()) == 0
  assert float(trainer.current_learning_rate()) == learning_rate
  assert float(trainer.optimizer.dynamic_scale.numpy()) == 2.0**39
  trainable = {id(variable) for variable in trainer.network.trainable_variables}
  for variable, before in zip(trainer.network.variables, weights):
    if id(variable) in trainable:
      np.testing.assert_array_equal(variable.numpy(), before)
  # Nor does the weight average move.
  for average, before in zip(trainer._state.weight_average, averages):
    np.testing.assert_array_equal(average.numpy(), before)
  # The loop tries skipped steps again: it still applies num_steps updates.
  trainer.optimizer.dynamic_scale.assign(2.0**40)
  assert trainer.train().step == 3
  assert int(trainer.step.numpy()) == 3
  assert float(trainer.optimizer.dynamic_scale.numpy()) < 2.0**39


@pytest.mark.parametrize('mode', ['segsort', 'segsort_unsup', 'softmax'])
def test_jit_compile_compiles_the_whole_step_with_the_same_result(
  voc, tmp_path, mode
):
  results = []
  for jit_compile in (False, True):
    config = make_config(
      voc,
      tmp_path / str(jit_compile),
      mode=mode,
      num_steps=2,
      jit_compile=jit_compile,
      num_banks=2 if mode == 'segsort' else 0,
      learning_rate=1e-6,
    )
    trainer = trainer_lib.Trainer(config, dataset=fixed_batches(voc, config))
    result = trainer.train()
    results.append(
      (
        result.losses['total_loss'],
        [variable.numpy() for variable in trainer.network.trainable_variables],
      )
    )
  # The update (of the step counter too) is inside the compiled function.
  graph = trainer._train_step.get_concrete_function(
    trainer._iterator
  ).graph.as_graph_def()
  compiled_ops = {
    node.op
    for function in graph.library.function
    if function.attr['_XlaMustCompile'].b
    for node in function.node_def
  }
  assert 'AssignAddVariableOp' in compiled_ops
  assert results[1][0] == pytest.approx(results[0][0], rel=1e-4)
  for eager, xla in zip(results[0][1], results[1][1]):
    np.testing.assert_allclose(xla, eager, rtol=1e-3, atol=1e-4)


def test_ctrl_c_names_the_checkpoint_a_rerun_resumes_from(
  voc, tmp_path, monkeypatch
):
  # Ctrl-C printed TensorFlow's traceback and no word of what was kept.
  config = make_config(voc, tmp_path / 'run', num_steps=6, save_pred_every=2)
  real_init = trainer_lib.Trainer.__init__

  def init_with_ctrl_c_at_step_3(self, *args, **kwargs):
    real_init(self, *args, **kwargs)
    real_step = self._train_step
    calls = []

    def step_then_ctrl_c(iterator):
      calls.append(None)
      if len(calls) == 3:
        raise KeyboardInterrupt
      return real_step(iterator)

    self._train_step = step_then_ctrl_c

  monkeypatch.setattr(
    trainer_lib.Trainer, '__init__', init_with_ctrl_c_at_step_3
  )
  with pytest.raises(SystemExit) as raised:
    trainer_lib.main(config)
  assert re.fullmatch(
    r'error: interrupted at step 2 of 6; run the same command again to '
    r'resume from .*ckpt-2, the latest checkpoint',
    str(raised.value.code),
  )
  monkeypatch.undo()
  assert trainer_lib.run(config).step == 6


def test_every_bad_file_of_the_list_is_named_before_the_first_step(
  voc, tmp_path
):
  # The pipeline found one bad file per run, at the step that read it.
  lines, cut = _lines_with_a_truncated_image(voc, tmp_path, 1)
  small = tmp_path / 'small.png'
  Image.fromarray(np.zeros((5, 5), np.uint8)).save(small)
  lines[3] = '%s %s' % (lines[3].split()[0], small)
  list_path = tmp_path / 'list.txt'
  list_path.write_text('\n'.join(lines) + '\n')
  config = make_config(voc, tmp_path / 'run', data_list=str(list_path))
  with pytest.raises(errors.DataError) as raised:
    trainer_lib.run(config)
  message = str(raised.value)
  assert 'line 2: Cannot decode image %s' % cut in message
  assert 'line 4: ' in message and str(small) in message
  assert not os.path.exists(os.path.join(config.snapshot_dir, 'checkpoint'))


def test_a_bad_oversegmentation_is_named_before_the_first_step(voc, tmp_path):
  # Unsupervised lists were decoded without their oversegmentations, so a
  # truncated one stopped the run at the step that read it.
  root, train_list = voc
  with open(train_list) as stream:
    lines = [line.strip() for line in stream if line.strip()]
  image_id = os.path.splitext(os.path.basename(lines[1].split()[0]))[0]
  with open(os.path.join(root, 'VOC2012', 'hed', image_id + '.png'), 'rb') as f:
    contents = f.read()
  cut = tmp_path / 'cut.png'
  cut.write_bytes(contents[: len(contents) // 2])
  lines[1] = '%s %s' % (lines[1], cut)
  list_path = tmp_path / 'list.txt'
  list_path.write_text('\n'.join(lines) + '\n')
  config = make_config(
    voc, tmp_path / 'run', mode='segsort_unsup', data_list=str(list_path)
  )
  with pytest.raises(errors.DataError) as raised:
    trainer_lib.run(config)
  assert 'line 2: Cannot decode oversegmentation %s' % cut in str(raised.value)
  assert not os.path.exists(os.path.join(config.snapshot_dir, 'checkpoint'))
