"""Trains supervised SegSort.

    python -m segsort.train_segsort --help

Its flags, and what it does with them: segsort.train_flags.
"""

from segsort import train_flags


def main(argv=None):
  train_flags.main('segsort', argv)


if __name__ == '__main__':
  main()
