"""Converters of community-trained weights onto the project's own backbones.

Each architecture has one module ``weaver_<arch>`` exposing ``convert_weaver_<arch>(state_dict,
data_config, ...) -> Model``; :mod:`~foundation.convert.weaver_common` holds what they share
(reading a state dict safely, strict key checks, :func:`write_converted`),
:mod:`~foundation.convert.weaver_config` reads weaver data configs and
:func:`convert_weaver_file` (``foundation hub convert weaver ARCH ...``) picks the converter.

Example:
    >>> from foundation.convert import (
    ...     convert_weaver_particlenet, read_state_dict, read_weaver_data_config)
    >>> model = convert_weaver_particlenet(
    ...     read_state_dict("ParticleNet_full.pt"), read_weaver_data_config("JetClass_full.yaml"))
"""

from foundation.convert.weaver import CONVERTERS, convert_weaver_file, get_converter
from foundation.convert.weaver_common import (
    ConversionError,
    WeaverSource,
    check_state_dict,
    describe_source,
    read_state_dict,
    write_converted,
)
from foundation.convert.weaver_config import WeaverDataConfig, read_weaver_data_config
from foundation.convert.weaver_part import convert_weaver_part
from foundation.convert.weaver_particlenet import convert_weaver_particlenet

__all__ = [
    "CONVERTERS",
    "ConversionError",
    "WeaverDataConfig",
    "WeaverSource",
    "check_state_dict",
    "convert_weaver_file",
    "convert_weaver_part",
    "convert_weaver_particlenet",
    "describe_source",
    "get_converter",
    "read_state_dict",
    "read_weaver_data_config",
    "write_converted",
]
