"""Tests of segsort.config: flags, config.json, checkpoint look-up."""

import dataclasses
import importlib
import json
import os

import pytest
import tensorflow as tf

from network import builder
from network import checkpoints
from segsort import config as config_lib


# The original release's train_segsort.py defaults that this port keeps.
ORIGINAL_DEFAULTS = dict(
  ignore_label=255,
  input_size=(336, 336),
  power=0.9,
  momentum=0.9,
  weight_decay=5e-4,
  num_classes=21,
  learning_rate=1e-3,
  embedding_dim=32,
  concentration=10.0,
  num_clusters=(5, 5),
  kmeans_iterations=10,
  num_banks=2,
  is_training=False,
  use_global_status=False,
  random_mirror=False,
  random_crop=False,
  random_scale=False,
  not_restore_classifier=False,
)

# The deliberate exceptions, each explained in segsort/config.py's docstring:
# the original's iter_size 10 ran 10 separate updates per step, where ours
# accumulates gradients, so ours defaults to 1.
DELIBERATE_EXCEPTIONS = {'segsort': dict(iter_size=(10, 1))}


def test_defaults_are_the_original_flags_but_the_listed_exceptions():
  config = config_lib.TrainConfig.from_flags([], mode='segsort')
  assert config.mode == 'segsort'
  for name, value in ORIGINAL_DEFAULTS.items():
    assert getattr(config, name) == value, name
  for name, (original, ours) in DELIBERATE_EXCEPTIONS['segsort'].items():
    assert getattr(config, name) == ours != original, name
  assert (
    config.backbone,
    config.head,
    config.output_stride,
    config.num_gpu,
  ) == ('resnet_v1_101', 'pspnet', 8, 1)
  # The dataclass's defaults are those of the default mode.
  assert config == config_lib.TrainConfig()


@pytest.mark.parametrize(
  'mode, learning_rate, num_banks',
  [('segsort', 1e-3, 2), ('softmax', 1e-3, 2), ('segsort_unsup', 2.5e-4, 0)],
)
def test_mode_specific_defaults(mode, learning_rate, num_banks):
  config = config_lib.TrainConfig.from_flags([], mode=mode)
  assert (config.learning_rate, config.num_banks) == (learning_rate, num_banks)
  assert (
    config_lib.TrainConfig.from_flags(
      ['--learning_rate', '0.5'], mode=mode
    ).learning_rate
    == 0.5
  )


def test_iter_size_help_explains_the_original_s_default():
  help_text = ' '.join(config_lib.build_argument_parser().format_help().split())
  assert 'accumulated' in help_text and "original's default 10" in help_text
  assert (
    "--iter_size accumulates gradients into one update per step; the "
    "original's "
    'default 10 ran 10 separate updates per step'
    in ' '.join(config_lib.__doc__.split())
  )


def test_flags_are_parsed_into_typed_fields():
  config = config_lib.TrainConfig.from_flags(
    [
      '--batch_size',
      '16',
      '--input_size',
      '480,320',
      '--learning_rate',
      '2e-3',
      '--is_training',
      '--use_global_status',
      '--random_mirror',
      '--random_scale',
      '--random_crop',
      '--concentration',
      '10',
      '--backbone',
      'mini',
      '--head',
      'deeplabv3plus',
      '--output_stride',
      '16',
      '--num_gpu',
      '4',
      '--sync_batch_norm',
      '--mixed_precision',
      '--jit_compile',
      '--snapshot_dir',
      'snapshots/x',
    ],
    mode='softmax',
  )
  assert config.mode == 'softmax'
  assert config.batch_size == 16
  assert config.input_size == (480, 320)
  assert config.learning_rate == 2e-3
  assert config.is_training and config.use_global_status
  assert config.random_mirror and config.random_scale and config.random_crop
  assert config.concentration == 10.0
  assert (config.backbone, config.head, config.output_stride) == (
    'mini',
    'deeplabv3plus',
    16,
  )
  assert config.num_gpu == 4
  assert config.sync_batch_norm and config.mixed_precision
  assert config.jit_compile
  assert config.output_channels == config.num_classes == 21


def test_square_input_size_and_unsupervised_defaults():
  config = config_lib.TrainConfig.from_flags(
    ['--input_size', '321'], mode='segsort_unsup'
  )
  assert config.input_size == (321, 321)
  assert config.num_banks == 0
  assert config.output_channels == config.embedding_dim


@pytest.mark.parametrize(
  'argv, message',
  [
    (['--backbone', 'resnet_v1_152'], 'invalid choice'),
    (['--head', 'unet'], 'invalid choice'),
    (['--input_size', '336,x'], 'height,width'),
    (['--batch_size', '0'], '--batch_size must be at least 1'),
    (['--iter_size', '0'], '--iter_size must be at least 1'),
    (['--warmup_steps', '-1'], '--warmup_steps must be a number >= 0'),
    (
      ['--warmup_steps', '11', '--num_steps', '10'],
      '--warmup_steps 11 is more than --num_steps 10',
    ),
  ],
)
def test_bad_flags_exit_with_a_message(capsys, argv, message):
  with pytest.raises(SystemExit):
    config_lib.TrainConfig.from_flags(argv, mode='segsort')
  assert message in capsys.readouterr().err


def test_unsupervised_mode_refuses_memory_banks():
  with pytest.raises(ValueError, match='--num_banks must be 0'):
    config_lib.TrainConfig(mode='segsort_unsup', num_banks=2)


def test_unknown_names_are_refused_before_anything_is_built():
  with pytest.raises(ValueError, match="--backbone 'vgg16'"):
    config_lib.TrainConfig(backbone='vgg16')
  with pytest.raises(ValueError, match="mode 'fancy'"):
    config_lib.TrainConfig(mode='fancy')


def test_names_match_the_network_builder():
  assert set(config_lib.BACKBONES) == set(builder.BACKBONES)
  assert set(config_lib.HEADS) == set(builder.HEADS)


@pytest.mark.parametrize('mode', config_lib.MODES)
def test_every_entry_point_has_help(mode):
  help_text = config_lib.build_argument_parser(mode).format_help()
  for flag in (
    '--data_dir',
    '--restore_from',
    '--not_restore_classifier',
    '--num_gpu',
    '--overwrite_config',
  ):
    assert flag in help_text


def test_config_round_trips_through_json(tmp_path):
  config = config_lib.TrainConfig(
    mode='softmax', input_size=(100, 120), backbone='mini', learning_rate=1e-3
  )
  path = config_lib.save_config(config, str(tmp_path))
  assert path == str(tmp_path / 'config.json')
  with open(path) as stream:
    assert json.load(stream)['input_size'] == [100, 120]
  assert config_lib.load_config(str(tmp_path)) == config
  assert config_lib.load_config(path) == config
  assert not [name for name in os.listdir(tmp_path) if name != 'config.json']


def test_num_clusters_is_a_grid_of_rows_and_columns(tmp_path):
  assert config_lib.TrainConfig.from_flags(
    ['--num_clusters', '4,6']
  ).num_clusters == (4, 6)
  assert config_lib.TrainConfig.from_flags(
    ['--num_clusters', '7']
  ).num_clusters == (7, 7)
  # config.json of earlier versions: clusters per axis, one integer.
  values = config_lib.TrainConfig().to_dict()
  values['num_clusters'] = 8
  (tmp_path / 'config.json').write_text(json.dumps(values))
  assert config_lib.load_config(str(tmp_path)).num_clusters == (8, 8)
  assert config_lib.TrainConfig(num_clusters=(8, 8)).to_dict()[
    'num_clusters'
  ] == [8, 8]
  with pytest.raises(ValueError, match='--num_clusters'):
    config_lib.TrainConfig(num_clusters=(0, 3))


def test_bad_config_files_are_reported(tmp_path):
  with pytest.raises(FileNotFoundError, match='No training config'):
    config_lib.load_config(str(tmp_path))
  (tmp_path / 'config.json').write_text('{"mode": "segsort", "colour": 1}')
  with pytest.raises(ValueError, match='colour'):
    config_lib.load_config(str(tmp_path))


def test_config_differences_ignore_resumable_fields():
  saved = config_lib.TrainConfig(learning_rate=1e-3, num_gpu=1)
  # A run directory moved or copied elsewhere resumes there.
  current = config_lib.TrainConfig(
    learning_rate=2e-3,
    num_gpu=2,
    update_tb_every=5,
    embedding_dim=64,
    snapshot_dir='/elsewhere/run',
    # Read only when a run starts from --restore_from, never on resume.
    not_restore_classifier=True,
  )
  assert config_lib.config_differences(saved, current) == [
    ('embedding_dim', 32, 64),
    ('learning_rate', 1e-3, 2e-3),
  ]


def _write_checkpoint(prefix):
  return tf.train.Checkpoint(value=tf.Variable(1.0)).write(prefix)


def test_resolve_checkpoint_takes_directories_and_prefixes(tmp_path):
  manager = tf.train.CheckpointManager(
    tf.train.Checkpoint(value=tf.Variable(1.0)),
    str(tmp_path),
    max_to_keep=2,
    checkpoint_name='ckpt',
  )
  manager.save(checkpoint_number=10)
  latest = manager.save(checkpoint_number=20)
  assert checkpoints.resolve_checkpoint(str(tmp_path)) == latest
  first = str(tmp_path / 'ckpt-10')
  assert checkpoints.resolve_checkpoint(first) == first
  # pathlib paths too: a prefix was joined to '.index' by '+'.
  assert checkpoints.resolve_checkpoint(tmp_path / 'ckpt-10') == first
  assert checkpoints.resolve_checkpoint(tmp_path) == latest


def test_resolve_checkpoint_explains_what_is_missing(tmp_path, caplog):
  with pytest.raises(
    FileNotFoundError,
    match='argument --restore_from: no checkpoint in directory',
  ):
    checkpoints.resolve_checkpoint(str(tmp_path))
  with pytest.raises(FileNotFoundError, match=r'ckpt-7\.index'):
    checkpoints.resolve_checkpoint(str(tmp_path / 'ckpt-7'))
  # It said there was no "checkpoint" file.
  (tmp_path / 'checkpoint').write_text('model_checkpoint_path: "ckpt-2"\n')
  with pytest.raises(
    FileNotFoundError,
    match=r'the "checkpoint" file of .* names .*ckpt-2, whose .*ckpt-2\.index '
    'is missing',
  ):
    checkpoints.resolve_checkpoint(str(tmp_path))
  # Without a stray TensorFlow ERROR line before the message.
  assert "Couldn't match files" not in caplog.text


@pytest.mark.parametrize(
  'restore_from, error, message',
  [
    ('', FileNotFoundError, '^argument run: empty checkpoint path$'),
    (None, TypeError, '^argument run: expected a checkpoint path, got None$'),
    (
      'ckpt-3.index',
      FileNotFoundError,
      r"^argument run: .*ckpt-3\.index is a checkpoint's index file; give its "
      r'prefix .*ckpt-3$',
    ),
  ],
)
def test_resolve_checkpoint_names_what_is_not_a_checkpoint_path(
  tmp_path, restore_from, error, message
):
  _write_checkpoint(str(tmp_path / 'ckpt-3'))
  if restore_from:
    restore_from = str(tmp_path / restore_from)
  with pytest.raises(error, match=message):
    checkpoints.resolve_checkpoint(restore_from, argument='run')


def test_config_for_checkpoint_is_read_beside_it(tmp_path):
  prefix = _write_checkpoint(str(tmp_path / 'ckpt-1'))
  with pytest.raises(FileNotFoundError, match='config.json'):
    config_lib.load_config_for_checkpoint(prefix)
  config = config_lib.TrainConfig(backbone='mini', embedding_dim=16)
  config_lib.save_config(config, str(tmp_path))
  assert config_lib.load_config_for_checkpoint(prefix) == config


@pytest.mark.parametrize('mode, channels', [('segsort', 16), ('softmax', 5)])
def test_network_from_config_has_the_mode_s_outputs(mode, channels):
  config = config_lib.TrainConfig(
    mode=mode, backbone='mini', head='deeplab', embedding_dim=16, num_classes=5
  )
  network = builder.build_network_from_config(config)
  assert network(tf.zeros([1, 33, 40, 3])).shape == (1, 5, 5, channels)


@pytest.mark.parametrize(
  'module_name, description',
  [
    ('segsort.train_segsort', 'Trains SegSort (supervised)'),
    ('segsort.train_segsort_unsup', 'Trains unsupervised SegSort'),
    ('segsort.train_softmax', 'softmax baseline'),
  ],
)
def test_entry_points_parse_their_mode_s_flags(
  capsys, module_name, description
):
  module = importlib.import_module(module_name)
  with pytest.raises(SystemExit) as exited:
    module.main(['--help'])
  assert exited.value.code == 0
  assert description in capsys.readouterr().out


def test_paths_spelled_differently_are_the_same_configuration(
  tmp_path, monkeypatch
):
  monkeypatch.chdir(tmp_path)
  relative = config_lib.TrainConfig(
    data_dir='data/',
    data_list='./lists/../lists/train.txt',
    snapshot_dir='run',
    restore_from='snapshots/imagenet',
  )
  absolute = config_lib.TrainConfig(
    data_dir=str(tmp_path / 'data'),
    data_list=str(tmp_path / 'lists' / 'train.txt'),
    snapshot_dir=str(tmp_path / 'run') + '/',
    restore_from=str(tmp_path / 'snapshots' / 'imagenet'),
  )
  assert not config_lib.config_differences(relative, absolute, ignored=())
  moved = dataclasses.replace(absolute, data_dir=str(tmp_path / 'other'))
  assert config_lib.config_differences(relative, moved, ignored=()) == [
    ('data_dir', 'data/', str(tmp_path / 'other'))
  ]


def test_a_link_to_a_directory_is_that_directory(tmp_path):
  # A DATAROOT reached through a symbolic link was refused as other data.
  for name in ('camvid', 'other'):
    (tmp_path / name).mkdir()
  link = tmp_path / 'link'
  link.symlink_to(tmp_path / 'camvid')
  saved = config_lib.TrainConfig(data_dir=str(link))
  real = config_lib.TrainConfig(data_dir=str(tmp_path / 'camvid'))
  assert not config_lib.config_differences(saved, real, ignored=())
  # Pointed at other data since, the link no longer names the same set.
  link.unlink()
  link.symlink_to(tmp_path / 'other')
  assert [
    field
    for field, _, _ in config_lib.config_differences(saved, real, ignored=())
  ] == ['data_dir']


@pytest.mark.parametrize('mode', config_lib.MODES)
def test_colour_jitter_is_a_flag_of_every_mode(mode):
  assert not config_lib.TrainConfig.from_flags([], mode=mode).random_colour
  assert config_lib.TrainConfig.from_flags(
    ['--random_colour'], mode=mode
  ).random_colour
