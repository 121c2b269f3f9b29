"""tray.data: Ray Data's API — streaming datasets over pyarrow blocks in tray's object store.

``import tray.data as rd`` (or ``from tray import data``) gives Ray's names: ``range``,
``from_items``, ``read_parquet``, ``Dataset.map_batches``, ``ActorPoolStrategy``,
``DataContext``, ``DataIterator``. Needs ``pip install "tray[data]"`` (pyarrow, pandas, numpy,
fsspec; Pillow for ``read_images``).
"""

from tray.lowlevel import require as _require

_require("pyarrow", "data")
_require("numpy", "data")

from .aggregate import AggregateFn  # noqa: E402
from .context import DataContext, ExecutionOptions, ExecutionResources  # noqa: E402
from .dataset import (  # noqa: E402
    ActorPoolStrategy,
    Dataset,
    GroupedData,
    MaterializedDataset,
    Schema,
    TaskPoolStrategy,
)
from .iterator import DataIterator  # noqa: E402
from .read_api import (  # noqa: E402
    from_arrow,
    from_items,
    from_numpy,
    from_pandas,
    from_torch,
    range,
    range_tensor,
    read_binary_files,
    read_csv,
    read_images,
    read_json,
    read_numpy,
    read_parquet,
    read_text,
)

__all__ = [
    "ActorPoolStrategy", "AggregateFn", "DataContext", "DataIterator", "Dataset", "ExecutionOptions",
    "ExecutionResources", "GroupedData", "MaterializedDataset", "Schema", "TaskPoolStrategy",
    "from_arrow", "from_items", "from_numpy", "from_pandas", "from_torch", "range", "range_tensor",
    "read_binary_files", "read_csv", "read_images", "read_json", "read_numpy", "read_parquet", "read_text",
]
