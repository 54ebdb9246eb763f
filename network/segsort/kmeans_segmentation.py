"""Test-time segments by vMF k-means on the embedding and pixel location.

`segment_by_kmeans_without_labels`, the original release's, clusters every
pixel; `segment_by_kmeans_on_grid` clusters the network's output cells and
then gives every pixel one of its surrounding cells' clusters, optionally
weighing the pixel's colour against the cluster's (`colour_distances`).
"""

import numbers

import tensorflow as tf

from network.segsort import checks
from network.segsort import common_utils

# Beyond this the colour alone decides every join (a colour step of one
# 8-bit level, (1/255)**2 * 1e6 = 15, outweighs any cosine difference, at
# most 2), and float32 products of larger weights with squared distances
# (up to 3 for RGB) overflow.
MAX_COLOUR_WEIGHT = 1e6


def colour_weight_problem(colour_weight):
  """Why a colour weight is refused, or None for one in [0, MAX_COLOUR_WEIGHT].

  Args:
    colour_weight: Any value; a real number (not a bool) in range passes,
      nan and inf do not.

  Returns:
    A one-line message naming the value, or None.
  """
  if (
    isinstance(colour_weight, numbers.Real)
    and not isinstance(colour_weight, bool)
    and 0.0 <= colour_weight <= MAX_COLOUR_WEIGHT
  ):
    return None
  return 'colour_weight must be a number >= 0 and <= %d, got %r' % (
    MAX_COLOUR_WEIGHT,
    colour_weight,
  )


def segment_by_kmeans_without_labels(
  embedding, num_clusters, kmeans_iterations
):
  """Cuts every image into segments by vMF k-means with location features.

  Segments are clusters alone, as at test time; training's segments are
  also cut by the semantic labels (`train_utils.segment_by_kmeans_and_labels`).

  Args:
    embedding: A float tensor `[batch, height, width, D]` of unit vectors.
    num_clusters: A list of 2 integers, the initial grid's clusters along y
      and x.
    kmeans_iterations: The number of k-means iterations.

  Returns:
    cluster_labels: An int32 tensor `[batch, height, width]`, segments
      numbered across the batch in order of first appearance (none empty).
    segment_prototypes: A float32 tensor `[num_segments, D]` of unit
      vectors, mean directions of the embedding (without location).

  Raises:
    ValueError: If `embedding` is not `[batch, height, width, D]`.
    tf.errors.InvalidArgumentError: If it holds NaN or infinity.
  """
  checks.check_embedding(embedding)
  # float16, bfloat16 and float64 would meet float32 location features.
  embedding = checks.assert_finite(tf.cast(embedding, tf.float32), 'embedding')
  shape = tf.shape(embedding)
  batch_size, height, width = shape[0], shape[1], shape[2]
  location_features = common_utils.generate_location_features(
    [height, width], 'float'
  )
  location_features = tf.tile(
    location_features[tf.newaxis], [batch_size, 1, 1, 1]
  )
  embedding_with_location = common_utils.normalize_embedding(
    tf.concat([embedding, location_features], 3)
  )
  cluster_labels = common_utils.kmeans(
    embedding_with_location, num_clusters, kmeans_iterations
  )
  cluster_labels += tf.range(batch_size)[
    :, tf.newaxis, tf.newaxis
  ] * common_utils.total_clusters(num_clusters)
  _, flat_cluster_labels = tf.unique(tf.reshape(cluster_labels, [-1]))
  cluster_labels = tf.reshape(flat_cluster_labels, shape[:3])
  return cluster_labels, common_utils.calculate_prototypes_from_labels(
    embedding, cluster_labels
  )


def _surrounding_cells(num_pixels, num_cells, output_stride):
  """The two grid cells whose centres bracket every pixel along one axis.

  Args:
    num_pixels: The image's length in pixels along the axis.
    num_cells: The grid's length in cells, `ceil(num_pixels / stride)`.
    output_stride: Pixels per cell.

  Returns:
    An int32 tensor `[num_pixels, 2]` of cell indices in `[0, num_cells)`:
    the nearest cell centre at or before the pixel, and the one after
    (equal at the borders), the support of bilinear upsampling.
  """
  centres = (tf.range(num_pixels, dtype=tf.float32) + 0.5) / output_stride - 0.5
  before = tf.cast(tf.floor(centres), tf.int32)
  cells = tf.stack([before, before + 1], axis=1)
  return tf.clip_by_value(cells, 0, num_cells - 1)


def segment_by_kmeans_on_grid(
  grid_embedding,
  pixel_embedding,
  num_clusters,
  kmeans_iterations,
  output_stride,
  pixel_colour=None,
  colour_weight=0.0,
):
  """Segments one image by vMF k-means on the output grid, then per pixel.

  k-means with location features runs on the network's output cells; every
  pixel of the (bilinearly upsampled) embedding then joins the most similar
  of the clusters of its 2 x 2 surrounding cells, again with location. The
  segments keep pixel-accurate boundaries at a cost that does not grow with
  the number of clusters per pixel: the original release
  (`segment_by_kmeans_without_labels` on the upsampled embedding) ran
  every iteration on all pixels, output_stride**2 times the work, which
  made the fine grids of street scenes (e.g. 16 x 21 clusters on 360 x 480
  images) cost seconds per image on a CPU.

  With `colour_weight` > 0 a pixel's score for a candidate cluster is its
  cosine similarity (embedding and location) minus `colour_weight` times
  the squared distance between its colour and the cluster's mean colour: a
  vMF model of the embedding and an isotropic Gaussian of the colour per
  segment. The embedding alone places a boundary between two segments
  midway between their cells' centres, whatever the image shows, so it
  is quantised to the output grid; the colour moves it onto the image's
  edge (README: "Colour in the pixel join"). This is this port's addition;
  the original release tried colour in the k-means features of an
  exploratory script (`prototype_embedding_rgb.py`), never in its
  inference. Weight 0 is the original's segmentation.

  Args:
    grid_embedding: A float32 tensor `[h, w, D]` of unit vectors, the
      network's output for the image.
    pixel_embedding: A float32 tensor `[H, W, D]` of unit vectors, the
      embedding upsampled to the image, with `h = ceil(H / output_stride)`
      and `w = ceil(W / output_stride)`.
    num_clusters: A list of 2 integers, the initial grid's clusters along y
      and x.
    kmeans_iterations: The number of k-means iterations.
    output_stride: Pixels per cell along each axis.
    pixel_colour: A float32 tensor `[H, W, C]` of every pixel's colour,
      e.g. RGB / 255 in [0, 1] (a constant offset, such as a subtracted
      mean, changes nothing); needed when `colour_weight` > 0.
    colour_weight: A Python float in [0, MAX_COLOUR_WEIGHT], the weight of
      the squared colour distance against the cosine similarity (in
      [-1, 1]); 0 ignores colour.

  Returns:
    segment_ids: An int32 tensor `[H, W]` in `[0, num_segments)`, numbered
      in order of first appearance (none empty).
    segment_prototypes: A float32 tensor `[num_segments, D]` of unit
      vectors, mean directions of the pixels' embedding (without location).

  Raises:
    ValueError: If `colour_weight` is not a number in [0,
      MAX_COLOUR_WEIGHT] (`colour_weight_problem`), or is positive without
      `pixel_colour`; if an embedding is not 3-D, or their static sizes
      do not fit `output_stride`.
    tf.errors.InvalidArgumentError: If the grid embedding holds NaN or
      infinity.
  """
  problem = colour_weight_problem(colour_weight)
  if problem:
    raise ValueError(problem)
  if colour_weight > 0.0 and pixel_colour is None:
    raise ValueError('colour_weight > 0 needs pixel_colour.')
  _check_grid_fits_pixels(grid_embedding, pixel_embedding, output_stride)
  # float16, bfloat16 and float64 would meet float32 location features.
  grid_embedding = checks.assert_finite(
    tf.cast(grid_embedding, tf.float32), 'grid_embedding'
  )
  pixel_embedding = tf.cast(pixel_embedding, tf.float32)
  grid_shape = tf.shape(grid_embedding)
  pixel_shape = tf.shape(pixel_embedding)
  # Both grids measure location in the same unit: cells of the grid.
  grid_location = common_utils.generate_location_features(
    [grid_shape[0], grid_shape[1]], 'float'
  )
  pixel_location = tf.stack(
    tf.meshgrid(
      tf.range(pixel_shape[0], dtype=tf.float32)
      / tf.cast(grid_shape[0] * output_stride, tf.float32),
      tf.range(pixel_shape[1], dtype=tf.float32)
      / tf.cast(grid_shape[1] * output_stride, tf.float32),
      indexing='ij',
    ),
    axis=2,
  )
  grid_features = common_utils.normalize_embedding(
    tf.concat([grid_embedding, grid_location], 2)
  )
  pixel_features = common_utils.normalize_embedding(
    tf.concat([pixel_embedding, pixel_location], 2)
  )
  cell_clusters = common_utils.kmeans(
    grid_features[tf.newaxis], num_clusters, kmeans_iterations
  )[0]
  cluster_features = common_utils.calculate_prototypes_from_labels(
    grid_features, cell_clusters, common_utils.total_clusters(num_clusters)
  )

  rows = _surrounding_cells(pixel_shape[0], grid_shape[0], output_stride)
  columns = _surrounding_cells(pixel_shape[1], grid_shape[1], output_stride)
  # [H, W, 4]: the clusters of the 2 x 2 cells around every pixel, gathered
  # by flat cell index (a transpose of these int32 ids made TensorFlow's
  # oneDNN pass log an error-level line on CPUs without its int32 support).
  cells = (
    rows[:, tf.newaxis, :, tf.newaxis] * tf.shape(cell_clusters)[1]
    + columns[tf.newaxis, :, tf.newaxis, :]
  )
  candidates = tf.reshape(
    tf.gather(tf.reshape(cell_clusters, [-1]), cells),
    [pixel_shape[0], pixel_shape[1], 4],
  )
  similarities = tf.einsum(
    'hwd,hwcd->hwc', pixel_features, tf.gather(cluster_features, candidates)
  )
  if colour_weight > 0.0:
    cluster_colours = _cluster_colours(
      pixel_colour,
      cell_clusters,
      common_utils.total_clusters(num_clusters),
      output_stride,
    )
    similarities -= colour_weight * colour_distances(
      pixel_colour, tf.gather(cluster_colours, candidates)
    )
  best = tf.argmax(similarities, axis=2, output_type=tf.int32)
  pixel_clusters = tf.gather(candidates, best[..., tf.newaxis], batch_dims=2)[
    ..., 0
  ]
  _, segment_ids = tf.unique(tf.reshape(pixel_clusters, [-1]))
  segment_ids = tf.reshape(segment_ids, pixel_shape[:2])
  return segment_ids, common_utils.calculate_prototypes_from_labels(
    pixel_embedding, segment_ids
  )


def _check_grid_fits_pixels(grid_embedding, pixel_embedding, output_stride):
  """Raises ValueError unless `[h, w, D]` is the `[H, W, D]` image's grid.

  Where sizes are static: `h = ceil(H / output_stride)`, likewise w.
  """
  grid_shape = tf.TensorShape(grid_embedding.shape)
  pixel_shape = tf.TensorShape(pixel_embedding.shape)
  for name, shape in (
    ('grid_embedding', grid_shape),
    ('pixel_embedding', pixel_shape),
  ):
    if shape.rank is not None and shape.rank != 3:
      raise ValueError(
        '%s must be [height, width, D] of one image, got rank %d'
        % (name, shape.rank)
      )
  if grid_shape.rank is None or pixel_shape.rank is None:
    return
  for axis, side in ((0, 'rows'), (1, 'columns')):
    cells, pixels = grid_shape[axis], pixel_shape[axis]
    if cells is not None and pixels is not None:
      if cells != -(-pixels // output_stride):
        raise ValueError(
          'grid_embedding has %d %s but pixel_embedding %d: at '
          'output_stride %d, %d pixels make %d cells'
          % (
            cells,
            side,
            pixels,
            output_stride,
            pixels,
            -(-pixels // output_stride),
          )
        )


def colour_distances(pixel_colour, candidate_colours):
  """Squared colour distances of every pixel to its candidate clusters.

  Args:
    pixel_colour: A float32 tensor `[H, W, C]`.
    candidate_colours: A float32 tensor `[H, W, K, C]`, the mean colours of
      each pixel's K candidate clusters.

  Returns:
    A float32 tensor `[H, W, K]`, in colour units squared.
  """
  return tf.reduce_sum(
    tf.math.squared_difference(
      pixel_colour[:, :, tf.newaxis, :], candidate_colours
    ),
    axis=3,
  )


def _cluster_colours(pixel_colour, cell_clusters, num_clusters, output_stride):
  """Mean colour of the pixels of every cluster of output cells.

  Args:
    pixel_colour: A float32 tensor `[H, W, C]`.
    cell_clusters: An int32 tensor `[h, w]` in `[0, num_clusters)`, with
      `h = ceil(H / output_stride)` and `w = ceil(W / output_stride)`.
    num_clusters: The number of cluster ids.
    output_stride: Pixels per cell along each axis.

  Returns:
    A float32 tensor `[num_clusters, C]`; 0 for clusters without pixels.
  """
  pixel_shape = tf.shape(pixel_colour)
  grid_shape = tf.shape(cell_clusters)
  # Cells along the bottom and right edges may hang over the image: the
  # padding carries no colour and no count.
  padding = [
    [0, grid_shape[0] * output_stride - pixel_shape[0]],
    [0, grid_shape[1] * output_stride - pixel_shape[1]],
    [0, 0],
  ]
  with_count = tf.pad(
    tf.concat([pixel_colour, tf.ones_like(pixel_colour[:, :, :1])], 2),
    padding,
  )
  cell_sums = tf.nn.avg_pool2d(
    with_count[tf.newaxis], output_stride, output_stride, 'VALID'
  )[0]
  cluster_sums = tf.math.unsorted_segment_sum(
    tf.reshape(cell_sums, [-1, tf.shape(cell_sums)[2]]),
    tf.reshape(cell_clusters, [-1]),
    num_clusters,
  )
  return tf.math.divide_no_nan(cluster_sums[:, :-1], cluster_sums[:, -1:])
