"""Trains unsupervised SegSort from contour-based oversegmentations.

    python -m segsort.train_segsort_unsup --help

Flags are those of segsort.config.build_argument_parser; the work is done by
segsort.trainer.
"""

from segsort import trainer


def main(argv=None):
  trainer.main('segsort_unsup', argv)


if __name__ == '__main__':
  main()
