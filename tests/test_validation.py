"""Tests of validation during training (segsort/validation.py), CPU, mini."""

import glob
import json
import logging
import os
import re

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from network import checkpoints
from segsort import config as config_lib
from segsort import data
from segsort import errors
from segsort import inference
from segsort import train_segsort
from segsort import trainer as trainer_lib
from segsort import validation
from tools import make_synthetic_voc

NUM_CLASSES = 4


@pytest.fixture(scope='module')
def voc(tmp_path_factory):
  """A generated set: 6 training and 3 validation images of 48x64."""
  root = str(tmp_path_factory.mktemp('voc'))
  lists = make_synthetic_voc.make_synthetic_voc(
    root,
    num_train=6,
    num_val=3,
    size=(48, 64),
    num_classes=NUM_CLASSES,
    seed=0,
    with_oversegmentation=False,
  )
  return root, lists


def make_config(voc, snapshot_dir, **overrides):
  root, lists = voc
  values = dict(
    mode='segsort',
    batch_size=2,
    data_dir=root,
    data_list=lists['train'],
    input_size=(48, 48),
    backbone='mini',
    num_steps=4,
    learning_rate=1e-3,
    num_banks=0,
    num_classes=NUM_CLASSES,
    embedding_dim=8,
    kmeans_iterations=3,
    save_pred_every=100,
    update_tb_every=100,
    is_training=True,
    snapshot_dir=str(snapshot_dir),
    eval_every=2,
    eval_list=lists['val'],
    eval_images=2,
    eval_prototype_images=4,
  )
  values.update(overrides)
  return config_lib.TrainConfig(**values)


def scalar_events(snapshot_dir):
  """{tag: {step: value}} of the TensorBoard scalars of a run."""
  scalars = {}
  for path in glob.glob(os.path.join(snapshot_dir, 'tensorboard', '*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        array = tf.make_ndarray(value.tensor)
        # The pictures of the training summaries are no scalars.
        if array.ndim == 0:
          scalars.setdefault(value.tag, {})[event.step] = float(array)
  return scalars


@pytest.mark.parametrize('mode', ['segsort', 'softmax'])
def test_validation_runs_every_n_steps_and_keeps_the_best(
  voc, tmp_path, caplog, mode
):
  config = make_config(voc, tmp_path, mode=mode)
  caplog.set_level(logging.INFO)
  trainer = trainer_lib.Trainer(config)
  trainer.train()
  lines = [
    record.getMessage()
    for record in caplog.records
    if record.getMessage().startswith('validation at step')
  ]
  assert [int(line.split()[3].rstrip(':')) for line in lines] == [2, 4]
  logged = [
    float(re.search(r'mIoU ([\d.]+)%', line).group(1)) / 100 for line in lines
  ]
  assert all('class IoU: class 0 ' in line for line in lines)
  # Softmax runs label without prototypes, and said "0 prototypes of 0".
  counts = re.search(r' s \((.*evaluation images)\)', lines[0]).group(1)
  if mode == 'softmax':
    assert counts == '2 evaluation images'
  else:
    assert re.fullmatch(
      r'\d+ prototypes of 4 images, 2 evaluation images', counts
    )
  seconds = [
    float(re.search(r'; ([\d.]+) s \(', line).group(1)) for line in lines
  ]
  assert all(second > 0 for second in seconds)

  scalars = scalar_events(str(tmp_path))
  assert sorted(scalars['validation/miou']) == [2, 4]
  np.testing.assert_allclose(
    [scalars['validation/miou'][step] for step in (2, 4)], logged, atol=5e-5
  )
  assert sorted(scalars['validation/seconds']) == [2, 4]
  assert any(tag.startswith('validation/class_iou/class_') for tag in scalars)

  best_step = (2, 4)[int(np.argmax(logged))]
  best_dir = os.path.join(str(tmp_path), validation.BEST_DIR_NAME)
  with open(os.path.join(best_dir, validation.BEST_RECORD_FILE)) as stream:
    record = json.load(stream)
  assert record['step'] == best_step
  assert abs(record['miou'] - max(logged)) < 5e-5
  assert len(record['class_iou']) == NUM_CLASSES
  # The best checkpoint is beside the latest ones and restores for inference.
  prefix = checkpoints.resolve_checkpoint(best_dir)
  assert prefix.endswith('ckpt-%d' % best_step)
  assert tf.train.latest_checkpoint(str(tmp_path)).endswith('ckpt-4')
  network, _, _ = inference.restore_network(
    best_dir, inference.SEGSORT_MODES + inference.SOFTMAX_MODES
  )
  assert network.output_stride == trainer.network.output_stride

  # A resumed run compares against the recorded best.
  resumed = validation.Validator(
    config, trainer.network, trainer.checkpoint, trainer.strategy
  )
  assert (resumed.best_step, resumed.best_miou) == (best_step, record['miou'])


def test_with_a_weight_average_validation_scores_the_average(voc, tmp_path):
  config = make_config(voc, tmp_path, num_steps=4, ema_decay=0.5)
  trainer = trainer_lib.Trainer(config)
  state = trainer._state  # pylint: disable=protected-access
  scored = []
  evaluate = trainer._validator.evaluate  # pylint: disable=protected-access

  def recording_evaluate(step):
    scored.append(
      [variable.numpy() for variable in trainer.network.trainable_variables]
    )
    return evaluate(step)

  trainer._validator.evaluate = recording_evaluate  # pylint: disable=protected-access
  trainer.train(until_step=2)
  # At step 2 (of 4) the average was scored, and training goes on from the
  # trained weights, which differ from it.
  averages = [average.numpy() for average in state.weight_average]
  for seen, average in zip(scored[0], averages):
    np.testing.assert_array_equal(seen, average)
  assert not all(
    np.array_equal(variable.numpy(), average)
    for variable, average in zip(trainer.network.trainable_variables, averages)
  )
  # The best checkpoint of step 2 holds the weights it was scored with.
  best = trainer_lib.Trainer(
    make_config(voc, tmp_path / 'restored', num_steps=4, ema_decay=0.5)
  )
  best.checkpoint.restore(
    checkpoints.resolve_checkpoint(
      os.path.join(str(tmp_path), validation.BEST_DIR_NAME)
    )
  ).expect_partial()
  for variable, average in zip(best.network.trainable_variables, averages):
    np.testing.assert_array_equal(variable.numpy(), average)


@pytest.fixture(scope='module')
def short_run(voc, tmp_path_factory):
  """A SegSort run of 2 steps, validated at step 2: its Trainer."""
  trainer = trainer_lib.Trainer(
    make_config(voc, tmp_path_factory.mktemp('short_run'), num_steps=2)
  )
  trainer.train()
  return trainer


def test_a_changed_evaluation_subset_forgets_the_recorded_best(voc, short_run):
  config = short_run.config
  assert (
    validation.Validator(
      config, short_run.network, short_run.checkpoint, short_run.strategy
    ).best_step
    == 2
  )
  other = make_config(voc, config.snapshot_dir, num_steps=2, eval_images=1)
  resumed = validation.Validator(
    other, short_run.network, short_run.checkpoint, short_run.strategy
  )
  assert (resumed.best_step, resumed.best_miou) == (None, -np.inf)


def test_validation_labels_as_the_inference_engine(voc, short_run):
  config = short_run.config
  validator = validation.Validator(
    config, short_run.network, short_run.checkpoint, short_run.strategy
  )
  bank = validator.extract_bank()
  assert bank.features.shape[1] == config.embedding_dim
  assert len(bank.labels) == len(bank.features) > 0
  predictor = inference.SegSortPredictor(
    short_run.network,
    bank,
    window_size=config.input_size,
    strides=config.input_size,
    k_in_nearest_neighbors=validation.K_IN_NEAREST_NEIGHBORS,
    num_classes=config.num_classes,
    num_clusters=config.num_clusters,
    kmeans_iterations=config.kmeans_iterations,
  )
  label = validator.segsort_labeller(bank)
  root, lists = voc
  for example in data.entries_dataset(data.read_data_list(root, lists['val'])):
    np.testing.assert_array_equal(
      label(example['image']),
      inference.predict_labels(predictor, example['image']),
    )


def test_subsets_are_spread_over_the_list():
  assert validation.spread_subset(list('abcdefg'), 3) == ['a', 'd', 'g']
  assert validation.spread_subset(list('abc'), 0) == ['a', 'b', 'c']
  assert validation.spread_subset(list('abc'), 5) == ['a', 'b', 'c']


@pytest.mark.parametrize(
  'argv, message',
  [
    (['--eval_every', '5'], '--eval_every needs --eval_list'),
    (
      ['--eval_every', '-1', '--eval_list', 'v.txt'],
      '--eval_every must be a number >= 0',
    ),
    (['--eval_images', '-2'], '--eval_images must be a number >= 0'),
    (['--eval_prototype_images', 'x'], 'argument --eval_prototype_images'),
  ],
)
def test_bad_validation_flags_exit_with_one_line(capsys, argv, message):
  with pytest.raises(SystemExit):
    config_lib.TrainConfig.from_flags(argv, mode='segsort')
  assert message in capsys.readouterr().err


def test_a_bad_eval_list_stops_before_training(voc, tmp_path):
  root, lists = voc
  unlabelled = tmp_path / 'unlabelled.txt'
  with open(lists['val']) as stream:
    unlabelled.write_text(stream.readline().split()[0] + '\n')
  missing_image = tmp_path / 'missing_image.txt'
  missing_image.write_text(
    'VOC2012/JPEGImages/none.jpg VOC2012/segcls/none.png\n'
  )
  # Found only by decoding: stopped before the first step all the same.
  with open(lists['val']) as stream:
    image, label = stream.readline().split()[:2]
  truncated = tmp_path / 'truncated.jpg'
  with open(os.path.join(root, image), 'rb') as stream:
    truncated.write_bytes(stream.read()[:200])
  truncated_image = tmp_path / 'truncated_image.txt'
  truncated_image.write_text('%s %s\n' % (truncated, label))
  # Every label pixel ignored: every evaluation scored NaN, no best/ kept.
  void_label = tmp_path / 'void.png'
  Image.open(os.path.join(root, label)).point(lambda _: 255).save(void_label)
  all_void = tmp_path / 'all_void.txt'
  all_void.write_text('%s %s\n' % (image, void_label))
  cases = [
    (
      str(tmp_path / 'absent.txt'),
      'Cannot read data list %s' % (tmp_path / 'absent.txt'),
    ),
    (str(unlabelled), '%s: line 1: expected 2 or 3 fields' % unlabelled),
    (str(missing_image), '%s: line 1: missing file' % missing_image),
    (
      str(truncated_image),
      '%s: line 1: Cannot decode image %s' % (truncated_image, truncated),
    ),
    (
      str(all_void),
      'no pixel of the labels of the 1 evaluated images of %s has a class '
      'of [0, --num_classes %d)' % (all_void, NUM_CLASSES),
    ),
  ]
  for eval_list, message in cases:
    snapshot_dir = tmp_path / ('run_' + os.path.basename(eval_list))
    argv = [
      '--backbone',
      'mini',
      '--data_dir',
      root,
      '--data_list',
      lists['train'],
      '--num_classes',
      str(NUM_CLASSES),
      '--input_size',
      '48,48',
      '--snapshot_dir',
      str(snapshot_dir),
      '--eval_every',
      '2',
      '--eval_list',
      eval_list,
    ]
    with pytest.raises(SystemExit) as raised:
      train_segsort.main(argv)
    assert str(raised.value).startswith('error: --eval_list: ')
    assert '\n' not in str(raised.value)
    assert message in str(raised.value)
    assert not os.path.exists(snapshot_dir / 'config.json')


def _data_dir_with_class_names(voc, tmp_path, names_text):
  """A DATAROOT holding voc's images and the given classes.txt."""
  root, _ = voc
  data_dir = tmp_path / 'data'
  data_dir.mkdir()
  os.symlink(os.path.join(root, 'VOC2012'), data_dir / 'VOC2012')
  (data_dir / 'classes.txt').write_text(names_text)
  return str(data_dir)


def test_validation_names_the_data_set_s_classes(
  voc, short_run, tmp_path, caplog
):
  data_dir = _data_dir_with_class_names(
    voc, tmp_path, 'sky\nroad\ncar\nsign symbol\n'
  )
  config = make_config(
    voc, str(tmp_path / 'run'), num_steps=2, data_dir=data_dir
  )
  validator = validation.Validator(
    config, short_run.network, short_run.checkpoint, short_run.strategy
  )
  caplog.set_level(logging.INFO)
  validator.evaluate(2)
  line = next(
    record.getMessage()
    for record in caplog.records
    if record.getMessage().startswith('validation at step')
  )
  assert 'class IoU: sky ' in line and ', sign symbol ' in line
  with open(
    os.path.join(validator.best_dir, validation.BEST_RECORD_FILE)
  ) as stream:
    record = json.load(stream)
  assert record['class_names'] == ['sky', 'road', 'car', 'sign symbol']


def test_a_class_names_file_of_another_data_set_stops_validation(
  voc, short_run, tmp_path
):
  data_dir = _data_dir_with_class_names(voc, tmp_path, 'sky\nroad\n')
  config = make_config(
    voc, str(tmp_path / 'run'), num_steps=2, data_dir=data_dir
  )
  with pytest.raises(
    errors.ListFileError,
    match=r'data/classes.txt holds 2 class names but there are 4 classes',
  ):
    validation.Validator(
      config, short_run.network, short_run.checkpoint, short_run.strategy
    )
