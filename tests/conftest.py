"""Test-wide settings: quiet TensorFlow, CPU only, the longest tests first."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')

# The longest tests (a minute or more each: two replicas in a child
# process, the whole demo, two workers), scheduled first so that the other
# worker runs the short ones beside them instead of both waiting at the end.
_LONGEST_FIRST = ('test_distributed.py', 'test_demo.py', 'test_multi_worker.py')


def pytest_collection_modifyitems(items):
  items.sort(key=lambda item: item.fspath.basename not in _LONGEST_FIRST)
