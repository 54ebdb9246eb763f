"""Trains supervised SegSort; flags: --help, segsort.train_flags."""

from segsort import train_flags

main = train_flags.entry_point('segsort')

if __name__ == '__main__':
  main()
