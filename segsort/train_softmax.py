"""Trains the pixel-wise softmax baseline.

    python -m segsort.train_softmax --help

Flags are those of segsort.config.build_argument_parser; the work is done by
segsort.trainer.
"""

from segsort import trainer


def main(argv=None):
  trainer.main('softmax', argv)


if __name__ == '__main__':
  main()
