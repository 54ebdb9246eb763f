"""SegSort for TensorFlow 2: segmentation by discriminative sorting of segments.

TensorFlow comes from exactly one extra, so that a CPU and a GPU build never
share site-packages (tensorflow-cpu and tensorflow both own the `tensorflow`
package; installing one over the other breaks the import when either is
removed):

    pip install '.[cpu]'   # tensorflow-cpu on x86-64 Linux, tensorflow elsewhere
    pip install '.[gpu]'   # tensorflow[and-cuda] (Linux with an NVIDIA GPU)

Only `network` and `segsort` are installed; `tools/` and `benchmarks/` are
run from the repository root (`python -m tools.check_list ...`).
"""

from setuptools import find_packages, setup

setup(
  name='segsort-tf2',
  version='0.1.0',
  description='SegSort (Hwang et al., ICCV 2019) for TensorFlow 2',
  license='MIT',
  python_requires='>=3.10',
  packages=find_packages(
    include=['network', 'network.*', 'segsort', 'segsort.*']
  ),
  install_requires=[
    'numpy',
    'scipy',
    # The contrib build: --sed_model needs cv2.ximgproc.
    'opencv-contrib-python-headless',
    'pillow',
    'tqdm',
    # tf.summary needs it; TensorFlow 2.20+ no longer installs it.
    'tensorboard',
  ],
  extras_require={
    'cpu': [
      'tensorflow-cpu>=2.16; platform_machine=="x86_64" and '
      'sys_platform=="linux"',
      'tensorflow>=2.16; platform_machine!="x86_64" or sys_platform!="linux"',
    ],
    'gpu': ['tensorflow[and-cuda]>=2.16'],
    'test': ['pytest', 'pytest-xdist', 'tf-slim', 'ruff'],
  },
  entry_points={
    'console_scripts': [
      'segsort-train = segsort.train_segsort:main',
      'segsort-train-unsup = segsort.train_segsort_unsup:main',
      'segsort-train-softmax = segsort.train_softmax:main',
      'segsort-extract-prototypes = segsort.extract_prototypes:main',
      'segsort-inference = segsort.inference_segsort:main',
      'segsort-inference-msc = segsort.inference_segsort_msc:main',
      'segsort-inference-softmax = segsort.inference_softmax:main',
      'segsort-benchmark-miou = segsort.benchmark_by_mIoU:main',
      'segsort-explain = segsort.explain:main',
      'segsort-export = segsort.export:main',
    ]
  },
)
