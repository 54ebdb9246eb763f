"""Segment groups of unsupervised SegSort: made, checked, read, trained on."""

import json
import os
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from segsort import config as config_lib
from segsort import data
from segsort import errors
from tools import check_list
from tools import make_oversegmentation
from tools import make_synthetic_voc

IMAGE_SIZE = (40, 56)


@pytest.fixture(scope='module')
def voc_root(tmp_path_factory):
  """A synthetic set whose hed/ segments are grouped into hed_groups/."""
  root = str(tmp_path_factory.mktemp('voc'))
  make_synthetic_voc.make_synthetic_voc(
    root, num_train=4, num_val=1, size=IMAGE_SIZE, num_classes=3, seed=5
  )
  hed = os.path.join(root, 'VOC2012', 'hed')
  assert (
    make_oversegmentation.main(
      ['--data_dir', root, '--groups_of', hed, '--threshold', '0.3']
    )
    == 0
  )
  return root


def _ids(root, folder):
  return sorted(os.listdir(os.path.join(root, 'VOC2012', folder)))


def _read(root, folder, name):
  return np.array(Image.open(os.path.join(root, 'VOC2012', folder, name)))


def test_groups_nest_the_segments_and_join_some(voc_root):
  names = [name for name in _ids(voc_root, 'hed') if name.endswith('.png')]
  assert [
    name for name in _ids(voc_root, 'hed_groups') if name.endswith('.png')
  ] == names
  joined = 0
  for name in names:
    segments = _read(voc_root, 'hed', name).astype(np.int64)
    groups = _read(voc_root, 'hed_groups', name)
    # Every segment lies in one group.
    pairs = np.unique(segments * 100000 + groups)
    assert len(pairs) == len(np.unique(segments))
    joined += len(np.unique(segments)) - len(np.unique(groups))
  assert joined > 0
  with open(
    os.path.join(
      voc_root, 'VOC2012', 'hed_groups', make_oversegmentation.SETTINGS_FILE
    )
  ) as stream:
    settings = json.load(stream)
  # Relative to the groups' folder, so that a moved DATAROOT keeps it.
  assert settings['groups_of'] == os.path.join('..', 'hed')
  assert settings['threshold'] == 0.3 and 'min_size' not in settings


def test_grouping_that_merges_nothing_is_warned_of(voc_root, tmp_path, capsys):
  # Segments of unknown settings (no record) were grouped one to one without
  # a word, and trained on as groups.
  root = str(tmp_path / 'copy')
  shutil.copytree(voc_root, root)
  hed = os.path.join(root, 'VOC2012', 'hed')
  os.remove(os.path.join(hed, make_oversegmentation.SETTINGS_FILE))
  argv = ['--data_dir', root, '--groups_of', hed, '--overwrite']
  assert make_oversegmentation.main(argv + ['--threshold', '0.001']) == 0
  assert (
    'warning: no segments were merged in any of the 5 images of %s'
    % os.path.join(root, 'VOC2012', 'hed_groups')
  ) in capsys.readouterr().out
  assert make_oversegmentation.main(argv + ['--threshold', '0.3']) == 0
  assert 'no segments were merged' not in capsys.readouterr().out


def test_groups_of_a_moved_data_root_are_kept(voc_root, tmp_path, capsys):
  # The record held absolute paths: in a moved DATAROOT the groups counted
  # as made with other settings, and a rerun was refused.
  moved = str(tmp_path / 'moved')
  shutil.copytree(voc_root, moved, symlinks=True)
  hed = os.path.join(moved, 'VOC2012', 'hed')
  argv = ['--data_dir', moved, '--groups_of', hed, '--threshold', '0.3']
  assert make_oversegmentation.main(argv) == 0
  assert 'other settings' not in capsys.readouterr().err
  # A record of absolute paths, as written before, still matches.
  record = os.path.join(
    moved, 'VOC2012', 'hed_groups', make_oversegmentation.SETTINGS_FILE
  )
  with open(record) as stream:
    settings = json.load(stream)
  settings['groups_of'] = hed
  with open(record, 'w') as stream:
    json.dump(settings, stream)
  assert make_oversegmentation.main(argv) == 0
  # Another folder's segments still count as other settings.
  shutil.copytree(hed, str(tmp_path / 'other_hed'))
  with pytest.raises(SystemExit, match='made with --groups_of'):
    make_oversegmentation.main(
      argv[:3]
      + [str(tmp_path / 'other_hed'), '--threshold', '0.3']
      + ['--output_dir', os.path.join(moved, 'VOC2012', 'hed_groups')]
    )


def test_grouping_is_the_coarser_cut_of_the_same_hierarchy():
  rng = np.random.default_rng(0)
  image = np.zeros((30, 40, 3), np.uint8)
  image[:, 20:] = 200
  image[15:, :20] = 90
  image = np.clip(image + rng.integers(0, 3, image.shape), 0, 255).astype(
    np.uint8
  )
  fine = make_oversegmentation.oversegment(image, threshold=0.0, min_size=1)
  groups = make_oversegmentation.group_segments(image, fine, threshold=0.1)
  coarse = make_oversegmentation.oversegment(image, threshold=0.1, min_size=1)
  assert len(np.unique(fine)) > len(np.unique(groups)) == 3
  np.testing.assert_array_equal(groups, coarse)


def test_grouping_refuses_missing_segments_and_the_oracle(voc_root, tmp_path):
  empty = tmp_path / 'hed'
  empty.mkdir()
  with pytest.raises(SystemExit) as raised:
    make_oversegmentation.main(
      ['--data_dir', voc_root, '--groups_of', str(empty), '--threshold', '0.2']
    )
  assert str(empty) in str(raised.value)
  assert 'missing file %s' % (empty / 'train_000000.png') in str(raised.value)
  assert 'decode' not in str(raised.value)
  assert not (tmp_path / 'hed_groups').exists() or not os.listdir(
    tmp_path / 'hed_groups'
  )
  with pytest.raises(SystemExit):
    make_oversegmentation.main(
      [
        '--data_dir',
        voc_root,
        '--groups_of',
        str(empty),
        '--oracle_label_dir',
        str(empty),
      ]
    )


@pytest.mark.parametrize('folder', ['hed', 'JPEGImages'])
def test_grouping_refuses_to_write_into_an_input_folder(
  voc_root, folder, capsys
):
  # Into hed/ it replaced the segments by their groups; into JPEGImages/ it
  # put PNGs beside the images, and every later run refused the folder.
  output_dir = os.path.join(voc_root, 'VOC2012', folder)
  before = sorted(os.listdir(output_dir))
  with pytest.raises(SystemExit):
    make_oversegmentation.main(
      [
        '--data_dir',
        voc_root,
        '--groups_of',
        os.path.join(voc_root, 'VOC2012', 'hed'),
        '--output_dir',
        output_dir + os.sep,
        '--overwrite',
      ]
    )
  assert 'is the input folder of' in capsys.readouterr().err
  assert sorted(os.listdir(output_dir)) == before


def test_segment_groups_path_is_the_sibling_folder():
  assert data.segment_groups_path('/d/VOC2012/hed/a.png') == os.path.join(
    '/d/VOC2012/hed_groups', 'a.png'
  )
  assert data.segment_groups_path('x/my_segments/b.png') == os.path.join(
    'x/my_segments_groups', 'b.png'
  )


def _unsupervised_list(root, tmp_path):
  path = tmp_path / 'unsup.txt'
  path.write_text(
    ''.join(
      'VOC2012/JPEGImages/%s\n' % name
      for name in _ids(root, 'JPEGImages')
      if name.endswith('.jpg')
    )
  )
  return str(path)


def _root_without_groups(voc_root, tmp_path):
  """A DATAROOT of voc_root's images and segments, with no hed_groups/."""
  root = tmp_path / 'root'
  (root / 'VOC2012').mkdir(parents=True)
  for folder in ('JPEGImages', 'hed'):
    (root / 'VOC2012' / folder).symlink_to(
      os.path.join(voc_root, 'VOC2012', folder)
    )
  return root


def test_missing_groups_are_named_by_list_line(voc_root, tmp_path):
  other = _root_without_groups(voc_root, tmp_path)
  data_list = _unsupervised_list(voc_root, tmp_path)
  with pytest.raises(errors.DataError) as raised:
    data.read_data_list(
      str(other),
      data_list,
      require_labels=False,
      with_oversegmentation=True,
      with_segment_groups=True,
    )
  message = str(raised.value)
  assert 'line 1: missing file' in message and 'hed_groups' in message
  # Without groups the same list reads.
  assert data.read_data_list(
    str(other), data_list, require_labels=False, with_oversegmentation=True
  )


def test_segments_that_span_groups_are_refused_naming_the_file(
  voc_root, tmp_path
):
  root = _root_without_groups(voc_root, tmp_path)
  (root / 'VOC2012' / 'hed_groups').mkdir()
  names = [name for name in _ids(voc_root, 'hed') if name.endswith('.png')]
  for name in names:
    segments = _read(voc_root, 'hed', name)
    groups = np.zeros_like(segments, np.uint8)
    if name == names[1]:
      groups[:, IMAGE_SIZE[1] // 2 :] = 1  # cuts segments in two
    Image.fromarray(groups).save(root / 'VOC2012' / 'hed_groups' / name)
  data_list = _unsupervised_list(voc_root, tmp_path)
  report = data.check_data_list(
    str(root),
    data_list,
    with_oversegmentation=True,
    with_segment_groups=True,
    require_labels=False,
  )
  assert len(report.problems) == 1
  assert report.problems[0].startswith('%s, line 2: ' % data_list)
  assert 'hed_groups/%s: segment' % names[1] in report.problems[0]
  assert 'every segment must lie in one group' in report.problems[0]
  assert (
    check_list.main(
      [
        '--data_dir',
        str(root),
        '--data_list',
        data_list,
        '--allow_unlabeled',
        '--with_oversegmentation',
        '--with_segment_groups',
      ]
    )
    == 1
  )


def test_check_list_wants_oversegmentations_for_groups(voc_root, capsys):
  with pytest.raises(SystemExit):
    check_list.main(
      ['--data_dir', voc_root, '--data_list', 'x', '--with_segment_groups']
    )
  assert 'needs --with_oversegmentation' in capsys.readouterr().err


def test_training_batches_carry_groups_that_nest_the_segments(
  voc_root, tmp_path
):
  data_list = _unsupervised_list(voc_root, tmp_path)
  dataset = data.build_training_dataset(
    voc_root,
    data_list,
    (24, 32),
    2,
    unsupervised=True,
    segment_groups=True,
    seed=1,
  )
  batch = next(iter(dataset))
  oversegmentation = batch['oversegmentation'].numpy()
  assert oversegmentation.shape == (2, 24, 32, 2)
  segments, groups = oversegmentation[..., 0], oversegmentation[..., 1]
  # Padding is -1 in both channels, and scaling keeps the nesting.
  np.testing.assert_array_equal(segments < 0, groups < 0)
  for image in range(2):
    valid = segments[image] >= 0
    pairs = np.unique(
      segments[image][valid].astype(np.int64) * 100000 + groups[image][valid]
    )
    assert len(pairs) == len(np.unique(segments[image][valid]))
  plain = next(
    iter(
      data.build_training_dataset(
        voc_root, data_list, (24, 32), 2, unsupervised=True, seed=1
      )
    )
  )
  np.testing.assert_array_equal(plain['oversegmentation'][..., 0], segments)


def test_segment_groups_are_for_unsupervised_segsort_only():
  config_lib.TrainConfig(mode='segsort_unsup', num_banks=0, segment_groups=True)
  with pytest.raises(ValueError, match='--segment_groups is for unsupervised'):
    config_lib.TrainConfig(mode='segsort', segment_groups=True)
  parser = config_lib.build_argument_parser('segsort_unsup')
  assert parser.parse_args(['--segment_groups']).segment_groups is True
  assert parser.parse_args([]).segment_groups is False
  supervised = config_lib.build_argument_parser('segsort')
  assert supervised.parse_args([]).segment_groups is False
  with pytest.raises(SystemExit):
    supervised.parse_args(['--segment_groups'])


def test_the_unsupervised_objective_trains_on_the_groups(voc_root, tmp_path):
  from segsort import objectives  # pylint: disable=g-import-not-at-top

  config = config_lib.TrainConfig(
    mode='segsort_unsup', num_banks=0, segment_groups=True, embedding_dim=4
  )
  objective = objectives.for_config(config)
  segments = tf.constant([[[[0], [1], [2]]]])
  one_group = tf.concat([segments, tf.zeros_like(segments)], axis=-1)
  own_groups = tf.concat([segments, segments], axis=-1)
  # Three alike pixels: kept apart, each segment's loss is large.
  outputs = tf.constant(
    [[[[1.0, 0.1, 0, 0], [1.0, 0, 0.1, 0], [1.0, 0, 0, 0.1]]]]
  )
  grouped = objective.loss(outputs, {'oversegmentation': one_group})
  separate = objective.loss(outputs, {'oversegmentation': own_groups})
  # One group: no segment is pushed from another, the loss is 0.
  assert grouped.numpy() == pytest.approx(0.0, abs=1e-6)
  assert separate.numpy() > 0.5


def test_groups_of_since_remade_segments_are_refused(tmp_path, capsys):
  # Groups of the earlier hed/ were kept as done: they no longer nest the
  # segments, which only training found.
  root = str(tmp_path)
  make_synthetic_voc.make_synthetic_voc(
    root, num_train=2, num_val=0, size=IMAGE_SIZE, num_classes=3, seed=1
  )
  hed = os.path.join(root, 'VOC2012', 'hed')
  common = ['--data_dir', root, '--workers', '1']
  grouping = common + ['--groups_of', hed, '--threshold', '0.3']
  make_oversegmentation.main(common + ['--threshold', '0.02', '--overwrite'])
  make_oversegmentation.main(grouping)
  # Groups cut no higher than their segments join nothing: said so.
  make_oversegmentation.main(
    common
    + ['--groups_of', hed, '--threshold', '0.02', '--output_dir', root + '/g']
  )
  assert 'is not above the 0.02 that the segments' in capsys.readouterr().out
  make_oversegmentation.main(common + ['--threshold', '0.05', '--overwrite'])
  with pytest.raises(
    SystemExit,
    match=r'made with .*\(of segments made with --threshold 0\.02 .*\), '
    r'not .*\(of segments made with --threshold 0\.05',
  ):
    make_oversegmentation.main(grouping)
  assert make_oversegmentation.main(grouping + ['--overwrite']) == 0
  for name in os.listdir(hed):
    if name.endswith('.png'):
      data.check_segments_nest_in_groups(
        _read(root, 'hed', name),
        _read(root, 'hed_groups', name),
        os.path.join(hed, name),
      )
  # Nor are segments grouped while an --overwrite of them is unfinished.
  open(
    os.path.join(hed, make_oversegmentation.OVERWRITE_MARK_FILE), 'w'
  ).close()
  with pytest.raises(SystemExit):
    make_oversegmentation.main(grouping + ['--overwrite'])


def test_readers_refuse_segments_left_mixed_by_an_interrupted_overwrite(
  tmp_path,
):
  # Training read the half-remade folder without a word.
  root = str(tmp_path)
  lists = make_synthetic_voc.make_synthetic_voc(
    root, num_train=2, num_val=0, size=IMAGE_SIZE, num_classes=3, seed=1
  )
  hed = os.path.join(root, 'VOC2012', 'hed')
  data.read_data_list(root, lists['train'], with_oversegmentation=True)
  open(
    os.path.join(hed, make_oversegmentation.OVERWRITE_MARK_FILE), 'w'
  ).close()
  with pytest.raises(
    errors.DataError, match='line 1: .*hed holds segments of two settings'
  ):
    data.read_data_list(root, lists['train'], with_oversegmentation=True)
  # Readers without segments do not mind.
  data.read_data_list(root, lists['train'])
