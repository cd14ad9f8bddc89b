"""Helpers for the slow container and SLURM tests (tests/test_containers.py, tests/test_slurm.py).

- images.py: build (or reuse) the CPU image with containers/build.sh over a debootstrap base.
- apptainer: a stand-in `apptainer` executable backed by podman, put on PATH only by these tests.
- slurm.py: a throw-away one-node SLURM cluster (real munged, slurmctld, slurmd).
- pipeline.py: copy the repository to a temp dir and run the test-config pipeline there.
"""
