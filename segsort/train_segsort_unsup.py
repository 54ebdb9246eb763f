"""Trains unsupervised SegSort from contour oversegmentations.

Flags: --help, segsort.train_flags.
"""

from segsort import train_flags

main = train_flags.entry_point('segsort_unsup')

if __name__ == '__main__':
  main()
