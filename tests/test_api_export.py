"""Tests of segsort.api and segsort.export against the inference commands."""

import inspect
import json
import os
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

pytest.register_assert_rewrite('inference_fixtures')
# pylint: disable=g-import-not-at-top,wrong-import-position
from inference_fixtures import NUM_CLASSES
from inference_fixtures import prototype_dir
from network.segsort import kmeans_segmentation
from segsort import api
from segsort import data
from segsort import export
from segsort import saved_model
from segsort import inference
from segsort import inference_flags
from segsort import inference_segsort
from segsort import inference_softmax

# The session fixtures: synthetic_set, segsort_checkpoint_dir,
# softmax_checkpoint_dir, prototype_run.
pytest_plugins = ('inference_fixtures',)


def _command_labels(
  tool, synthetic_set, restore_from, save_dir, window, strides, extra_flags=()
):
  """Runs an inference command on the val list; returns {image id: labels}."""
  tool.main(
    [
      '--data_dir',
      synthetic_set.data_dir,
      '--data_list',
      synthetic_set.val_list,
      '--restore_from',
      restore_from,
      '--save_dir',
      str(save_dir),
      '--num_classes',
      str(NUM_CLASSES),
      '--input_size',
      window,
      '--strides',
      strides,
    ]
    + list(extra_flags)
  )
  entries = data.read_data_list(synthetic_set.data_dir, synthetic_set.val_list)
  labels = {}
  for entry in entries:
    with Image.open(
      os.path.join(save_dir, 'gray', entry.image_id + '.png')
    ) as png:
      labels[entry.image_id] = np.asarray(png)
  return entries, labels


def _pair(text):
  return tuple(int(value) for value in text.split(','))


@pytest.mark.parametrize('colour_weight', [0.0, 10.0])
def test_api_export_and_command_give_identical_segsort_labels(
  synthetic_set, segsort_checkpoint_dir, prototype_run, tmp_path, colour_weight
):
  # Four overlapping windows on the 64x80 images.
  window, strides = '48,48', '24,32'
  bank_dir = prototype_dir(prototype_run)
  colour_flags = ['--colour_weight', str(colour_weight)]
  entries, expected = _command_labels(
    inference_segsort,
    synthetic_set,
    segsort_checkpoint_dir,
    tmp_path / 'command',
    window,
    strides,
    ['--prototype_dir', bank_dir] + colour_flags,
  )
  segmenter = api.load(
    segsort_checkpoint_dir,
    bank_dir,
    window_size=_pair(window),
    strides=_pair(strides),
    colour_weight=colour_weight,
  )
  export.main(
    [
      '--restore_from',
      segsort_checkpoint_dir,
      '--prototype_dir',
      bank_dir,
      '--output_dir',
      str(tmp_path / 'saved'),
      '--input_size',
      window,
      '--strides',
      strides,
    ]
    + colour_flags
  )
  serve = tf.saved_model.load(str(tmp_path / 'saved')).signatures[
    saved_model.SIGNATURE_KEY
  ]
  for entry in entries:
    image = data.load_image(entry.image_path)
    labels = segmenter.predict(image)
    assert labels.dtype == np.uint8 and labels.shape == image.shape[:2]
    np.testing.assert_array_equal(labels, expected[entry.image_id])
    exported = serve(image=tf.constant(image))['labels'].numpy()
    assert exported.dtype == np.uint8
    np.testing.assert_array_equal(exported, expected[entry.image_id])
    prediction = segmenter.predict(image, with_segments=True)
    np.testing.assert_array_equal(prediction.labels, labels)
    neighbours = prediction.neighbours
    num_segments = int(prediction.segment_ids.max()) + 1
    assert neighbours.votes.shape == (num_segments, NUM_CLASSES)
    assert neighbours.prototype_indices.shape == (num_segments, 15)
    assert np.all(neighbours.prototype_indices < len(segmenter.bank.labels))
  if colour_weight:
    # The weight reaches the segmentation: the generated objects' colour
    # edges move some segment boundaries.
    without_colour = api.Segmenter(
      segmenter.network,
      segmenter.config,
      segmenter.checkpoint_prefix,
      segmenter.bank,
      api.InferenceOptions(window_size=_pair(window), strides=_pair(strides)),
    )
    assert any(
      (
        without_colour.predict(image, with_segments=True).segment_ids
        != segmenter.predict(image, with_segments=True).segment_ids
      ).any()
      for image in map(data.load_image, (e.image_path for e in entries))
    )
  recorded = json.loads(
    (tmp_path / 'saved' / saved_model.SETTINGS_FILE).read_text()
  )
  assert recorded['window_size'] == list(_pair(window))
  assert recorded['k_in_nearest_neighbors'] == 15
  assert recorded['num_clusters'] == [5, 5]
  assert recorded['colour_weight'] == colour_weight


def test_api_export_and_command_give_identical_softmax_labels(
  synthetic_set, softmax_checkpoint_dir, tmp_path
):
  # One window, larger than the 64x80 images: they are padded.
  entries, expected = _command_labels(
    inference_softmax,
    synthetic_set,
    softmax_checkpoint_dir,
    tmp_path / 'command',
    '72,88',
    '72,88',
  )
  segmenter = api.load(
    softmax_checkpoint_dir, window_size=(72, 88), strides=(72, 88)
  )
  saved_model.export(segmenter, str(tmp_path / 'saved'))
  # Readable by others as any folder made here (a server may run as
  # another user), not private as the temporary folder it was written in.
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(tmp_path / 'saved').st_mode & 0o777 == 0o777 & ~umask
  serve = tf.saved_model.load(str(tmp_path / 'saved')).signatures[
    saved_model.SIGNATURE_KEY
  ]
  # A grayscale image is refused by its shape, not deep in the graph.
  with pytest.raises(
    tf.errors.InvalidArgumentError, match=r'not compatible with expected'
  ):
    serve(image=tf.zeros([8, 8], tf.uint8))
  # An empty one by its size ("Integer division by zero" before).
  for empty in ([0, 5, 3], [5, 0, 3]):
    with pytest.raises(
      tf.errors.InvalidArgumentError, match=r'image must be at least 1x1'
    ):
      serve(image=tf.zeros(empty, tf.uint8))
  for entry in entries:
    image = data.load_image(entry.image_path)
    np.testing.assert_array_equal(
      segmenter.predict(image), expected[entry.image_id]
    )
    np.testing.assert_array_equal(
      serve(image=tf.constant(image))['labels'].numpy(),
      expected[entry.image_id],
    )


def test_api_defaults_are_the_inference_command_s():
  args = inference_segsort.build_parser(
    '', (1.0,), api.DEFAULT_WINDOW_SIZE
  ).parse_args(
    [
      '--data_dir',
      'd',
      '--data_list',
      'l',
      '--restore_from',
      'r',
      '--save_dir',
      's',
      '--prototype_dir',
      'p',
    ]
  )
  assert (args.input_size, args.strides, args.k_in_nearest_neighbors) == (
    api.DEFAULT_WINDOW_SIZE,
    api.DEFAULT_STRIDES,
    api.DEFAULT_K_IN_NEAREST_NEIGHBORS,
  )
  assert (
    inspect.signature(inference_segsort.main)
    .parameters['default_input_size']
    .default
    == api.DEFAULT_WINDOW_SIZE
  )
  assert args.colour_weight == api.DEFAULT_COLOUR_WEIGHT == 0.0


def test_the_flags_bound_the_colour_weight_where_the_math_does():
  assert (
    inference_flags.MAX_COLOUR_WEIGHT == kmeans_segmentation.MAX_COLOUR_WEIGHT
  )


def test_an_image_of_another_type_or_shape_is_refused(
  segsort_checkpoint_dir, prototype_run
):
  segmenter = api.load(
    segsort_checkpoint_dir,
    prototype_dir(prototype_run),
    window_size=(64, 80),
    strides=(64, 80),
  )
  for image in (
    np.zeros((8, 8, 3), np.float32),
    np.zeros((8, 8), np.uint8),
    np.zeros((8, 8, 4), np.uint8),
    np.zeros((0, 8, 3), np.uint8),
  ):
    with pytest.raises(ValueError, match=r'uint8 array \[height, width, 3\]'):
      segmenter.predict(image)
  # An empty image is named as such, not as an array of another kind.
  with pytest.raises(ValueError, match=r'width >= 1; got shape \(0, 8, 3\)'):
    segmenter.predict(np.zeros((0, 8, 3), np.uint8))
  # Any size: a tiny and a non-multiple-of-the-stride image.
  for size in ((1, 1), (13, 70)):
    assert segmenter.predict(np.full(size + (3,), 200, np.uint8)).shape == size


def test_a_missing_or_superfluous_bank_is_named(
  segsort_checkpoint_dir, softmax_checkpoint_dir, prototype_run, tmp_path
):
  with pytest.raises(
    inference.InferenceError,
    match=r'give the prototype_dir \(--prototype_dir\)',
  ):
    api.load(segsort_checkpoint_dir)
  with pytest.raises(inference.InferenceError, match='softmax model'):
    api.load(softmax_checkpoint_dir, prototype_dir(prototype_run))
  with pytest.raises(inference.InferenceError, match='prototype_features.npy'):
    api.load(segsort_checkpoint_dir, str(tmp_path))
  # Extraction's --save_dir, which holds the bank in prototypes/, is named
  # with the folder to give instead.
  bank = pathlib.Path(prototype_dir(prototype_run))
  with pytest.raises(
    inference.InferenceError,
    match='its prototypes/ folder holds one: give %s' % re.escape(str(bank)),
  ):
    api.load(segsort_checkpoint_dir, bank.parent)


@pytest.mark.parametrize(
  'settings, message',
  [
    (
      {'k_in_nearest_neighbors': 0},
      r'k_in_nearest_neighbors must be an integer >= 1, got 0',
    ),
    (
      {'k_in_nearest_neighbors': -5},
      r'k_in_nearest_neighbors must be an integer >= 1',
    ),
    (
      {'k_in_nearest_neighbors': 1.5},
      r'k_in_nearest_neighbors must be an integer >= 1, got 1\.5',
    ),
    (
      {'k_in_nearest_neighbors': True},
      r'k_in_nearest_neighbors must be an integer >= 1, got True',
    ),
    ({'kmeans_iterations': -1}, r'kmeans_iterations must be an integer >= 0'),
    ({'kmeans_iterations': 2.5}, r'kmeans_iterations must be an integer >= 0'),
    ({'kmeans_iterations': 10**6}, r'and <= 1000, got 1000000'),
    ({'window_size': (0, 0)}, r'window_size must be an integer >= 1, got 0'),
    ({'window_size': (64,)}, r'window_size must be two integers'),
    ({'strides': 32}, r'strides must be two integers \(rows, columns\)'),
    ({'num_clusters': 2.5}, r'num_clusters must be an integer >= 1'),
    ({'num_clusters': (0, 3)}, r'num_clusters must be an integer >= 1, got 0'),
    ({'colour_weight': -1.0}, r'colour_weight must be a number >= 0 and <='),
    ({'colour_weight': float('nan')}, r'colour_weight must be a number >= 0'),
    # float32 scores would overflow (and colour alone decides long before).
    ({'colour_weight': 1e39}, r'<= 1000000, got 1e\+39'),
    ({'colour_weight': 10**400}, r'colour_weight must be a number >= 0'),
    ({'colour_weight': '10'}, r"colour_weight must be .*, got '10'"),
    ({'colour_weight': True}, r'colour_weight must be .*, got True'),
  ],
)
def test_nonsense_settings_are_refused_by_name(
  segsort_checkpoint_dir, prototype_run, settings, message
):
  with pytest.raises(inference.InferenceError, match=message):
    api.load(segsort_checkpoint_dir, prototype_dir(prototype_run), **settings)


def test_segsort_options_are_refused_for_a_softmax_run(
  softmax_checkpoint_dir, tmp_path
):
  # They were dropped without a word, and left out of the settings.
  with pytest.raises(
    inference.InferenceError,
    match=r'softmax model; colour_weight applies only to SegSort runs',
  ):
    api.load(softmax_checkpoint_dir, colour_weight=10.0)
  with pytest.raises(
    inference.InferenceError,
    match=r'k_in_nearest_neighbors, num_clusters apply only to SegSort',
  ):
    api.load(softmax_checkpoint_dir, k_in_nearest_neighbors=3, num_clusters=4)
  with pytest.raises(SystemExit) as exit_info:
    export.main(
      [
        '--restore_from',
        softmax_checkpoint_dir,
        '--output_dir',
        str(tmp_path / 'saved'),
        '--colour_weight',
        '10',
      ]
    )
  assert 'colour_weight applies only to SegSort runs' in str(
    exit_info.value.code
  )
  assert not (tmp_path / 'saved').exists()


def test_a_negative_zero_colour_weight_is_recorded_as_zero(
  segsort_checkpoint_dir, prototype_run
):
  segmenter = api.load(
    segsort_checkpoint_dir, prototype_dir(prototype_run), colour_weight=-0.0
  )
  assert str(segmenter.settings['colour_weight']) == '0.0'


def test_an_unknown_setting_is_refused_before_the_run_is_read(tmp_path):
  with pytest.raises(TypeError, match='k_nearest'):
    api.load(str(tmp_path / 'no_run'), k_nearest=3)
  with pytest.raises(inference.InferenceError, match='window_size'):
    api.load(str(tmp_path / 'no_run'), window_size=(64,))


def test_a_missing_run_is_named_by_the_parameter_it_was_given_as(tmp_path):
  # The Python caller passed `run`, not the command line's --restore_from.
  with pytest.raises(FileNotFoundError, match='^argument run: no checkpoint'):
    api.load(str(tmp_path / 'no_run'))
  (tmp_path / 'empty_run').mkdir()
  with pytest.raises(
    FileNotFoundError, match='^argument run: no checkpoint in directory'
  ):
    api.load(str(tmp_path / 'empty_run'))
  # A checkpoint without its run's config.json.
  tf.train.Checkpoint(value=tf.Variable(1.0)).write(
    str(tmp_path / 'empty_run' / 'ckpt-1')
  )
  with pytest.raises(
    FileNotFoundError, match='^argument run: no config.json beside checkpoint'
  ):
    api.load(str(tmp_path / 'empty_run' / 'ckpt-1'))


def test_options_given_to_the_segmenter_are_its_settings(
  segsort_checkpoint_dir, prototype_run
):
  loaded = api.load(segsort_checkpoint_dir, prototype_dir(prototype_run))
  options = api.InferenceOptions(
    window_size=(64, 96), strides=(32, 48), num_clusters=(3, 4)
  )
  segmenter = api.Segmenter(
    loaded.network,
    loaded.config,
    loaded.checkpoint_prefix,
    loaded.bank,
    options,
  )
  assert segmenter.settings['window_size'] == [64, 96]
  assert segmenter.settings['strides'] == [32, 48]
  assert segmenter.settings['num_clusters'] == [3, 4]
  # Unset k-means iterations come from config.json.
  assert (
    segmenter.settings['kmeans_iterations'] == loaded.config.kmeans_iterations
  )


def test_a_k_above_the_bank_s_size_is_lowered_and_recorded(
  segsort_checkpoint_dir, prototype_run, caplog
):
  segmenter = api.load(
    segsort_checkpoint_dir,
    prototype_dir(prototype_run),
    k_in_nearest_neighbors=100000,
  )
  num_prototypes = len(segmenter.bank.features)
  assert segmenter.settings['k_in_nearest_neighbors'] == num_prototypes
  assert (
    'k_in_nearest_neighbors 100000 is more than the %d prototypes'
    % num_prototypes
  ) in caplog.text


def test_export_refuses_an_existing_directory_and_bad_flags(
  segsort_checkpoint_dir, prototype_run, tmp_path, capsys
):
  common = [
    '--restore_from',
    segsort_checkpoint_dir,
    '--prototype_dir',
    prototype_dir(prototype_run),
  ]
  with pytest.raises(SystemExit):
    export.main(common + ['--output_dir', str(tmp_path)])
  assert 'argument --output_dir: %s exists' % tmp_path in (
    capsys.readouterr().err
  )
  with pytest.raises(SystemExit):
    export.main(
      common
      + [
        '--output_dir',
        str(tmp_path / 'new'),
        '--input_size',
        '64,64',
        '--strides',
        '80,80',
      ]
    )
  assert 'argument --strides: must be at most --input_size' in (
    capsys.readouterr().err
  )
  with pytest.raises(
    SystemExit, match='error: argument --restore_from: no checkpoint'
  ):
    export.main(
      [
        '--restore_from',
        str(tmp_path / 'none'),
        '--output_dir',
        str(tmp_path / 'new'),
      ]
    )
  assert not os.path.exists(tmp_path / 'new')
