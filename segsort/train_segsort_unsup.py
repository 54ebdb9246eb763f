"""Trains unsupervised SegSort from contour-based oversegmentations.

    python -m segsort.train_segsort_unsup --help

Flags are those of segsort.config.build_argument_parser (`--config
RUN/config.json` replays a saved run, `@FILE` reads flags from a file); the
work is done by segsort.trainer.
"""

from segsort import config as config_lib
from segsort import console


def main(argv=None):
  console.quiet_tensorflow()
  config = config_lib.TrainConfig.from_flags(argv, mode='segsort_unsup')
  # Imported once the flags are parsed, so that --help is quick.
  from segsort import trainer  # pylint: disable=g-import-not-at-top

  trainer.main(config)


if __name__ == '__main__':
  main()
