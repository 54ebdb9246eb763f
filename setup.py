"""SegSort for TensorFlow 2: segmentation by discriminative sorting of segments."""

from setuptools import find_packages, setup

setup(
    name='segsort-tf2',
    version='0.1.0',
    description='SegSort (Hwang et al., ICCV 2019) for TensorFlow 2',
    license='MIT',
    python_requires='>=3.10',
    packages=find_packages(include=['network', 'network.*', 'segsort', 'segsort.*', 'tools', 'tools.*']),
    install_requires=[
        'tensorflow-cpu>=2.16; platform_machine=="x86_64" and sys_platform=="linux"',
        'tensorflow>=2.16; platform_machine!="x86_64" or sys_platform!="linux"',
        'numpy',
        'scipy',
        'opencv-python-headless',
        'pillow',
        'tqdm',
    ],
    extras_require={
        'test': ['pytest', 'pytest-xdist', 'tf-slim'],
        'gpu': ['tensorflow[and-cuda]>=2.16'],
    },
    entry_points={'console_scripts': [
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
    ]},
)
