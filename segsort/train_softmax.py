"""Trains the pixel-wise softmax baseline.

    python -m segsort.train_softmax --help

Its flags, and what it does with them: segsort.train_flags.
"""

from segsort import train_flags


def main(argv=None):
  train_flags.main('softmax', argv)


if __name__ == '__main__':
  main()
