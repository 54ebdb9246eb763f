"""Trains unsupervised SegSort from contour-based oversegmentations.

    python -m segsort.train_segsort_unsup --help

Its flags, and what it does with them: segsort.train_flags.
"""

from segsort import train_flags


def main(argv=None):
  train_flags.main('segsort_unsup', argv)


if __name__ == '__main__':
  main()
