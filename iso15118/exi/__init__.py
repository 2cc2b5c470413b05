"""Schema-informed EXI 1.0 codec driven by the official ISO 15118 XSDs.

    >>> from iso15118.exi import codec
    >>> c = codec("common")                 # schema key, see SCHEMA_KEYS
    >>> data = c.encode_xml(xml_bytes)      # XML text -> EXI bytes
    >>> xml = c.decode_xml(data)            # EXI bytes -> UTF-8 XML
    >>> root = c.decode(data)               # EXI bytes -> iso15118.exi.tree.Element (typed values)
    >>> data = c.encode(root)               # Element -> EXI bytes (fast path, no XML text)

Options are those of ISO 15118 deployments (and of the reference, EXIficient, as real chargers
use it): EXI header without cookie or options, bit-packed, schema-informed, strict = false,
valuePartitionCapacity = 0, no built-in element grammars.
"""

# The submodule ``iso15118.exi.codec`` shares its name with the ``codec(key)`` function below.
# Importing it here, before the function is defined, makes the function win for good: later
# ``import iso15118.exi.codec`` statements find the module in sys.modules and leave the package
# attribute alone.
import iso15118.exi.codec as _codec_module
from iso15118.exi.errors import (
    ExiDecodeError,
    ExiEncodeError,
    ExiError,
    ExiFacetError,
    ExiLimitError,
    ExiTrailingDataError,
)
from iso15118.exi.facets import FacetWarning
from iso15118.exi.tree import Element

SCHEMA_KEYS = ("sap", "common", "ac", "dc", "acdp", "wpt", "xmldsig", "iso2", "din")

__all__ = [
    "SCHEMA_KEYS",
    "Element",
    "ExiDecodeError",
    "ExiEncodeError",
    "ExiError",
    "ExiFacetError",
    "ExiLimitError",
    "ExiTrailingDataError",
    "FacetWarning",
    "codec",
]


def codec(key: str) -> _codec_module.Codec:
    """The codec for one schema key (cached: one instance per key per process)."""
    return _codec_module.get_codec(key)
