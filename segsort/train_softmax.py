"""Trains the pixel-wise softmax baseline; flags: --help, segsort.train_flags."""

from segsort import train_flags

main = train_flags.entry_point('softmax')

if __name__ == '__main__':
  main()
