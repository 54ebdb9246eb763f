"""Pixel-by-prototype von Mises-Fisher log-sum-exps, one chunk at a time.

Both SegSort losses score every pixel against the prototypes (mean
directions) of the batch's segments with the kernel exp(concentration *
cosine), in the log domain so that no concentration overflows or
underflows. Every shape is static, so that eager execution, `tf.function`
and XLA (`jit_compile=True`) compute the same numbers: the filled prototype
slots are moved to the front and scored one chunk at a time, so that the
cost follows the number of segments rather than the number of slots.
"""

import collections
import numbers

import tensorflow as tf

# Prototypes scored per iteration of the pixel-by-prototype loop: large
# enough for efficient matrix products, small enough that few slots are
# wasted past the last segment (the recipe has about 700 with its banks).
_PROTOTYPE_CHUNK = 128
# The widest range of logits whose exponentials, relative to their largest
# possible value, stay normal float32 numbers (exp(-80) > 1.2e-38).
_MAX_FIXED_SHIFT_RANGE = 80.0

# Which prototypes count for which pixel (see `vmf_log_terms`): int32
# tensors `[num_pixels]`, `[num_pixels]`, `[num_slots]`, a scalar, and the
# groups, int32 `[num_pixels]` and `[num_slots]` or both None.
_Classes = collections.namedtuple(
  '_Classes',
  [
    'pixel_classes',
    'self_indices',
    'prototype_classes',
    'num_prototypes',
    'pixel_groups',
    'prototype_groups',
  ],
)

# What the forward and backward passes score: the embedding `[num_pixels,
# D]` and prototypes `[num_slots, D]` (neither watched by gradient tapes),
# their `_Classes` and the concentration, a float32 scalar.
_Inputs = collections.namedtuple(
  '_Inputs', ['embedding', 'prototypes', 'classes', 'concentration']
)

# One chunk of prototypes as the forward and backward passes see it: the
# index of its first prototype, its prototypes `[chunk, D]`, the logits
# `[num_pixels, chunk]` and the masks of `_chunk_masks`.
_Chunk = collections.namedtuple(
  '_Chunk', ['start', 'prototypes', 'logits', 'same', 'other', 'is_self']
)


def compact_prototypes(prototypes, prototype_labels):
  """Moves the filled slots to the front, in order, padded to whole chunks.

  Args:
    prototypes: A float tensor `[num_slots, D]`.
    prototype_labels: An int32 tensor `[num_slots]`, negative when empty.

  Returns:
    prototypes: A float tensor `[num_padded, D]`, the filled slots first
      (zero rows after them), with `num_padded` the multiple of
      `_PROTOTYPE_CHUNK` at or above `num_slots`.
    labels: An int32 tensor `[num_padded]`, -1 after the filled slots.
    positions: An int32 tensor `[num_slots]`, every filled slot's new index
      (-1 for empty slots).
    count: An int32 scalar, the number of filled slots.
  """
  num_slots = tf.shape(prototype_labels)[0]
  num_padded = -(-num_slots // _PROTOTYPE_CHUNK) * _PROTOTYPE_CHUNK
  filled = prototype_labels >= 0
  positions = tf.where(filled, tf.cumsum(tf.cast(filled, tf.int32)) - 1, -1)
  # Segment sums of unique positions are copies, with a gather as gradient.
  compacted = tf.math.unsorted_segment_sum(prototypes, positions, num_padded)
  labels = (
    tf.math.unsorted_segment_sum(prototype_labels + 1, positions, num_padded)
    - 1
  )
  return (
    compacted,
    labels,
    positions,
    tf.reduce_sum(tf.cast(filled, tf.int32)),
  )


def _chunk_masks(
  start,
  pixel_classes,
  self_indices,
  chunk_classes,
  pixel_groups=None,
  chunk_groups=None,
):
  """Tells, for a chunk of prototypes, which count for which pixel.

  Args:
    start: The index of the chunk's first prototype.
    pixel_classes: An int32 tensor `[num_pixels]`.
    self_indices: An int32 tensor `[num_pixels]`, every pixel's own
      prototype (-1 when the pixel is left out).
    chunk_classes: An int32 tensor `[chunk]`, -1 for empty slots.
    pixel_groups: An optional int32 tensor `[num_pixels]`.
    chunk_groups: An int32 tensor `[chunk]` when `pixel_groups` is given.

  Returns:
    same: A boolean tensor `[num_pixels, chunk]`, prototypes of the pixel's
      class other than its own.
    other: A boolean tensor `[num_pixels, chunk]`, prototypes of other
      classes (with groups: of other classes and other groups).
    is_self: A boolean tensor `[num_pixels, chunk]`, the pixel's own
      prototype.
  """
  filled = chunk_classes[tf.newaxis] >= 0
  is_self = tf.equal(
    self_indices[:, tf.newaxis],
    start + tf.range(tf.shape(chunk_classes)[0])[tf.newaxis],
  )
  same_class = tf.equal(pixel_classes[:, tf.newaxis], chunk_classes[tf.newaxis])
  same = tf.logical_and(
    tf.logical_and(filled, same_class), tf.logical_not(is_self)
  )
  other = tf.logical_and(filled, tf.logical_not(same_class))
  if pixel_groups is not None:
    other = tf.logical_and(
      other,
      tf.not_equal(pixel_groups[:, tf.newaxis], chunk_groups[tf.newaxis]),
    )
  return same, other, is_self


def _fold_over_chunks(step, initial_values, inputs):
  """Folds `step` over the chunks of filled prototypes in a `tf.while_loop`.

  Only the chunks below `inputs.classes.num_prototypes` are visited, so the
  cost follows the number of segments, while every shape is static.

  Args:
    step: A function of a `_Chunk` and the values, returning the new values.
    initial_values: A tuple of tensors, the values before the first chunk.
    inputs: An `_Inputs`.

  Returns:
    The tuple of values after the last chunk.
  """
  classes = inputs.classes
  scaled_embedding = inputs.concentration * inputs.embedding

  def chunk_groups(start):
    if classes.pixel_groups is None:
      return None, None
    return classes.pixel_groups, tf.slice(
      classes.prototype_groups, [start], [_PROTOTYPE_CHUNK]
    )

  def body(chunk_index, *values):
    start = chunk_index * _PROTOTYPE_CHUNK
    chunk_prototypes = tf.slice(
      inputs.prototypes, [start, 0], [_PROTOTYPE_CHUNK, -1]
    )
    chunk = _Chunk(
      start,
      chunk_prototypes,
      tf.matmul(scaled_embedding, chunk_prototypes, transpose_b=True),
      *_chunk_masks(
        start,
        classes.pixel_classes,
        classes.self_indices,
        tf.slice(classes.prototype_classes, [start], [_PROTOTYPE_CHUNK]),
        *chunk_groups(start),
      ),
    )
    return (chunk_index + 1, *step(chunk, *values))

  num_chunks = -(-classes.num_prototypes // _PROTOTYPE_CHUNK)
  return tf.while_loop(
    lambda chunk_index, *_: chunk_index < num_chunks,
    body,
    (tf.constant(0), *initial_values),
  )[1:]


def _accumulate_logsumexp(logits, mask, running_max, running_sum, fixed_shift):
  """Adds the masked logits of a chunk to a running log-sum-exp per row.

  The sum is kept relative to a shift, log-sum-exp = running_max +
  log(running_sum), so that no concentration overflows or underflows.

  Args:
    logits: A float tensor `[num_rows, chunk]`.
    mask: A boolean tensor of the same shape, the entries to add.
    running_max: A float tensor `[num_rows]`, the shift: -inf before any
      entry, or the fixed shift.
    running_sum: A float tensor `[num_rows]`, 0 before any entry.
    fixed_shift: Whether `running_max` is a fixed bound of every logit
      instead of the running maximum (one pass over the logits instead of
      two; see `vmf_log_terms`).

  Returns:
    The updated `running_max` and `running_sum`.
  """
  if fixed_shift:
    return running_max, running_sum + tf.reduce_sum(
      tf.where(
        mask, tf.exp(logits - running_max[:, tf.newaxis]), tf.zeros_like(logits)
      ),
      axis=1,
    )
  negative_infinity = tf.constant(-float('inf'), logits.dtype)
  new_max = tf.maximum(
    running_max,
    tf.reduce_max(tf.where(mask, logits, negative_infinity), axis=1),
  )
  shift = tf.where(tf.math.is_finite(new_max), new_max, tf.zeros_like(new_max))
  new_sum = running_sum * tf.exp(running_max - shift) + tf.reduce_sum(
    tf.where(
      mask, tf.exp(logits - shift[:, tf.newaxis]), tf.zeros_like(logits)
    ),
    axis=1,
  )
  return new_max, new_sum


@tf.function(jit_compile=True)
def _vmf_log_terms_forward(inputs, fixed_shift):
  """Computes the log-domain numerator and other-class sum of every pixel.

  See `vmf_log_terms`. Compiled with XLA in every mode (eager, tf.function),
  so that the elementwise work on each `[pixels x chunk]` block is fused into
  a few passes, and every mode computes the same numbers.
  """
  num_pixels = tf.shape(inputs.embedding)[0]
  zeros = tf.zeros([num_pixels])
  negative_infinity = tf.fill([num_pixels], -float('inf'))
  initial_max = (
    tf.fill([num_pixels], inputs.concentration)
    if fixed_shift
    else negative_infinity
  )

  def step(chunk, self_logits, same_max, same_sum, other_max, other_sum):
    self_logits += tf.reduce_sum(
      tf.where(chunk.is_self, chunk.logits, tf.zeros_like(chunk.logits)),
      axis=1,
    )
    same_max, same_sum = _accumulate_logsumexp(
      chunk.logits, chunk.same, same_max, same_sum, fixed_shift
    )
    other_max, other_sum = _accumulate_logsumexp(
      chunk.logits, chunk.other, other_max, other_sum, fixed_shift
    )
    return self_logits, same_max, same_sum, other_max, other_sum

  self_logits, same_max, same_sum, other_max, other_sum = _fold_over_chunks(
    step,
    (zeros, initial_max, zeros, initial_max, zeros),
    inputs,
  )
  # A sum is positive once it has an entry: at least exp(0) = 1 relative to
  # the running maximum, or exp(-2 * concentration) > 0 below the fixed one.
  has_same = same_sum > 0
  log_numerator = tf.where(
    has_same,
    same_max + tf.math.log(tf.where(has_same, same_sum, 1.0)),
    self_logits,
  )
  has_other = other_sum > 0
  log_others = tf.where(
    has_other,
    other_max + tf.math.log(tf.where(has_other, other_sum, 1.0)),
    negative_infinity,
  )
  return log_numerator, log_others, has_same


@tf.function(jit_compile=True)
def _vmf_log_terms_backward(
  inputs, num_differentiable, forward_outputs, output_gradients
):
  """Back-propagates into the embedding and prototypes of `vmf_log_terms`.

  The logits of every chunk are computed again rather than kept: keeping
  them would take memory for `[pixels x all slots]`. The derivative of a
  log-sum-exp is the softmax of its entries, exp(logit - log-sum-exp).
  `forward_outputs` are those of `_vmf_log_terms_forward`, and
  `output_gradients` the gradients of its log numerator and others term.
  """
  log_numerator, log_others, has_same = forward_outputs
  numerator_gradient, others_gradient = output_gradients
  has_others = tf.math.is_finite(log_others)
  safe_log_others = tf.where(has_others, log_others, tf.zeros_like(log_others))[
    :, tf.newaxis
  ]
  has_others = has_others[:, tf.newaxis]
  has_same = has_same[:, tf.newaxis]
  log_numerator = log_numerator[:, tf.newaxis]
  numerator_gradient = numerator_gradient[:, tf.newaxis]
  others_gradient = others_gradient[:, tf.newaxis]

  def step(chunk, embedding_gradient, prototype_gradient):
    # The numerator's terms: the same-class prototypes, or the own one.
    in_numerator = tf.where(has_same, chunk.same, chunk.is_self)
    zeros = tf.zeros_like(chunk.logits)
    logit_gradient = tf.where(
      tf.logical_and(chunk.other, has_others),
      others_gradient * tf.exp(chunk.logits - safe_log_others),
      zeros,
    ) + tf.where(
      in_numerator,
      numerator_gradient * tf.exp(chunk.logits - log_numerator),
      zeros,
    )
    embedding_gradient += tf.matmul(logit_gradient, chunk.prototypes)
    # Prototypes after the differentiable ones (memory) take no gradient.
    prototype_gradient = tf.cond(
      chunk.start < num_differentiable,
      lambda: tf.tensor_scatter_nd_update(
        prototype_gradient,
        (chunk.start + tf.range(_PROTOTYPE_CHUNK))[:, tf.newaxis],
        tf.matmul(logit_gradient, inputs.embedding, transpose_a=True),
      ),
      lambda: prototype_gradient,
    )
    return embedding_gradient, prototype_gradient

  embedding_gradient, prototype_gradient = _fold_over_chunks(
    step,
    (tf.zeros_like(inputs.embedding), tf.zeros_like(inputs.prototypes)),
    inputs,
  )
  # d(concentration * e . p) / de = concentration * p, and likewise for p.
  return (
    inputs.concentration * embedding_gradient,
    inputs.concentration * prototype_gradient,
  )


def vmf_log_terms(
  embedding,
  prototypes,
  pixel_classes,
  self_indices,
  prototype_classes,
  num_prototypes,
  num_differentiable,
  concentration,
  pixel_groups=None,
  prototype_groups=None,
):
  """Scores every pixel against every prototype, one chunk at a time.

  With logits concentration * cosine between pixel p and prototype j: the
  numerator is the log-sum-exp over filled prototypes of p's class other than
  its own (over its own prototype alone when there is none), and the others
  term the log-sum-exp over filled prototypes of other classes. With groups,
  prototypes of p's group are left out of the others term. Only the
  chunks below `num_prototypes` are visited, so the cost follows the number
  of segments, while every shape is static.

  Args:
    embedding: A float32 tensor `[num_pixels, D]` of unit (or zero) vectors:
      the logits are then bounded by the concentration.
    prototypes: A float32 tensor `[num_slots, D]`, `num_slots` a multiple of
      `_PROTOTYPE_CHUNK`, filled slots first (`compact_prototypes`).
    pixel_classes: An int32 tensor `[num_pixels]`.
    self_indices: An int32 tensor `[num_pixels]`, every pixel's own prototype
      (-1 for pixels left out, whose terms are then meaningless).
    prototype_classes: An int32 tensor `[num_slots]`, -1 for empty slots.
    num_prototypes: An int32 scalar, the number of filled slots.
    num_differentiable: An int32 scalar; prototypes from this index on get a
      zero gradient (memory-bank prototypes).
    concentration: A Python float (or float32 scalar tensor), the vMF
      concentration.
    pixel_groups: An optional int32 tensor `[num_pixels]`: prototypes of a
      pixel's group are neither in its numerator (unless of its class) nor
      in its others term.
    prototype_groups: An int32 tensor `[num_slots]`, given with
      `pixel_groups`.

  Returns:
    log_numerator: A float32 tensor `[num_pixels]`.
    log_others: A float32 tensor `[num_pixels]`, -inf without other classes.
  """
  if (pixel_groups is None) != (prototype_groups is None):
    raise ValueError('Give both pixel_groups and prototype_groups, or neither.')
  classes = _Classes(
    pixel_classes,
    self_indices,
    prototype_classes,
    num_prototypes,
    pixel_groups,
    prototype_groups,
  )
  # Logits lie in [-concentration, concentration], so exp(logit -
  # concentration) >= exp(-2 * concentration) stays a normal float32 (above
  # exp(-87)) up to this concentration: a fixed shift is then exact, and
  # saves the running maximum's extra pass.
  fixed_shift = (
    isinstance(concentration, numbers.Real)
    and 2.0 * concentration <= _MAX_FIXED_SHIFT_RANGE
  )
  concentration = tf.cast(concentration, tf.float32)

  @tf.custom_gradient
  def log_terms(embedding, prototypes):
    # Unwatched inputs keep tapes from differentiating the compiled loop.
    inputs = _Inputs(
      tf.stop_gradient(embedding),
      tf.stop_gradient(prototypes),
      classes,
      concentration,
    )
    forward_outputs = _vmf_log_terms_forward(inputs, fixed_shift)

    def gradient(*output_gradients):
      return _vmf_log_terms_backward(
        inputs, num_differentiable, forward_outputs, output_gradients
      )

    return forward_outputs[:2], gradient

  return log_terms(embedding, prototypes)
