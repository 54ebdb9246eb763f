"""Trains supervised SegSort.

    python -m segsort.train_segsort --help

Flags are those of segsort.config.build_argument_parser; the work is done by
segsort.trainer.
"""

from segsort import trainer


def main(argv=None):
  trainer.main('segsort', argv)


if __name__ == '__main__':
  main()
