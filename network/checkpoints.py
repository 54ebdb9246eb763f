"""TF-Slim ResNet checkpoints <-> Keras backbones from network.resnet_v1.

TF-Slim's ImageNet checkpoints (e.g. resnet_v1_101_2016_08_28.tar.gz,
extracted to snapshots/imagenet/trained/resnet_v1_101.ckpt) are name-based
TF1 checkpoints; the backbone's layers carry the Slim scopes
(resnet_v1.slim_variable_map), so restoring is a lookup by name.
"""

import os
import tempfile

import numpy as np
import tensorflow as tf

from network import resnet_v1


def _open_checkpoint(checkpoint_path):
    """Returns a CheckpointReader for a checkpoint prefix or a directory holding one."""
    try:
        return tf.train.load_checkpoint(checkpoint_path)
    except (ValueError, tf.errors.OpError) as error:
        raise ValueError(f'Cannot read a TF checkpoint at {checkpoint_path!r}: {error}') from error


def load_slim_resnet(backbone, checkpoint_path, slim_root_scope=None):
    """Restores every backbone weight from a TF-Slim ResNet v1 checkpoint.

    Checkpoint entries the backbone has no variable for (resnet_v1_101/logits/*,
    global_step, optimizer slots) are ignored. Nothing is assigned unless every
    backbone variable is present with the right shape.

    Args:
      backbone: keras.Model from network.resnet_v1 (SegmentationNetwork.backbone).
      checkpoint_path: Checkpoint prefix (e.g. '.../resnet_v1_101.ckpt') or a
        directory with a 'checkpoint' file.
      slim_root_scope: Root scope of the names in the checkpoint; defaults to
        the backbone's name (e.g. 'resnet_v1_101').

    Returns:
      Sorted list of the TF-Slim names restored (one per backbone variable).

    Raises:
      ValueError: If the checkpoint cannot be read, or if backbone weights are
        missing from it or have a different shape there; the message lists
        every such name.
    """
    reader = _open_checkpoint(checkpoint_path)
    checkpoint_shapes = reader.get_variable_to_shape_map()
    variables = resnet_v1.slim_variable_map(backbone, slim_root_scope)

    missing = sorted(name for name in variables if name not in checkpoint_shapes)
    mismatched = sorted(
        f'{name}: checkpoint {list(checkpoint_shapes[name])} vs model {list(variable.shape)}'
        for name, variable in variables.items()
        if name in checkpoint_shapes and list(checkpoint_shapes[name]) != list(variable.shape))
    if missing or mismatched:
        problems = []
        if missing:
            problems.append(f'{len(missing)} backbone weights missing from the checkpoint:\n  '
                            + '\n  '.join(missing))
        if mismatched:
            problems.append(f'{len(mismatched)} backbone weights with a different shape:\n  '
                            + '\n  '.join(mismatched))
        raise ValueError(f'Cannot restore {backbone.name!r} from {checkpoint_path!r}.\n'
                         + '\n'.join(problems))

    for name, variable in variables.items():
        variable.assign(reader.get_tensor(name).astype(np.float32))
    return sorted(variables)


def save_slim_resnet(backbone, checkpoint_path, slim_root_scope=None):
    """Writes the backbone's weights as a TF-Slim-named checkpoint.

    The inverse of load_slim_resnet, e.g. to ship a backbone trained here in
    the ImageNet checkpoints' format. The files appear complete or not at all:
    they are written under a temporary prefix and renamed.

    Args:
      backbone: keras.Model from network.resnet_v1.
      checkpoint_path: Checkpoint prefix to write (files `<prefix>.index` and
        `<prefix>.data-00000-of-00001`).
      slim_root_scope: Root scope of the names; defaults to the backbone's name.

    Returns:
      Sorted list of the TF-Slim names written.
    """
    variables = resnet_v1.slim_variable_map(backbone, slim_root_scope)
    names = sorted(variables)
    directory = os.path.dirname(os.path.abspath(checkpoint_path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as temporary_directory:
        temporary_prefix = os.path.join(temporary_directory, 'checkpoint')
        tf.raw_ops.SaveV2(prefix=temporary_prefix, tensor_names=names,
                          shape_and_slices=[''] * len(names),
                          tensors=[tf.convert_to_tensor(variables[name]) for name in names])
        # The index goes last: a reader that finds it finds the data too.
        for file_name in sorted(os.listdir(temporary_directory), key=lambda f: f.endswith('.index')):
            suffix = file_name[len('checkpoint'):]
            os.replace(os.path.join(temporary_directory, file_name), checkpoint_path + suffix)
    return names
