"""h5zstd_read.py — an independent reader for test_h5zstd: h5py (its own HDF5)
reads a zstd-filtered dataset through whatever plugin HDF5_PLUGIN_PATH names
and checks it bit for bit against an unfiltered copy of the same values.

Usage: h5zstd_read.py FILE FILTERED_DATASET REFERENCE_DATASET

Prints one "filter <i>: id=<id> values=[...]" line per filter in the
filtered dataset's pipeline, then "OK <shape>" and exits 0 when the data
match. Exit codes: 1 mismatch, 2 the filtered data could not be read,
3 usage or file error, 77 h5py/numpy not importable (the caller skips).
"""
import sys


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 3
    try:
        import h5py
        import numpy as np
    except ImportError as exc:
        print(f"SKIP: {sys.executable} cannot import h5py/numpy ({exc})")
        return 77

    path, filtered, reference = argv[1:]
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        print(f"cannot open {path}: {exc}")
        return 3
    with f:
        dset = f[filtered]
        ref = f[reference][...]
        dcpl = dset.id.get_create_plist()
        for i in range(dcpl.get_nfilters()):
            code, _flags, values, _name = dcpl.get_filter(i)
            print(f"filter {i}: id={code} values={list(values)}")
        try:
            data = dset[...]
        except (OSError, RuntimeError) as exc:
            print(f"READ FAILED: {exc}")
            return 2
        # Compare bytes, not values: exactness is the claim, and it also
        # holds for NaN payloads and signed zeros.
        if data.dtype != ref.dtype or data.shape != ref.shape or \
                data.tobytes() != ref.tobytes():
            bad = int(np.count_nonzero(data != ref)) if data.shape == ref.shape else -1
            print(f"MISMATCH dtype={data.dtype}/{ref.dtype} shape={data.shape}/{ref.shape} "
                  f"differing={bad}")
            return 1
        print(f"OK {data.shape[0]}x{data.shape[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
