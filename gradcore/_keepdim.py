"""The ``keepdim=`` flag of reductions and its numpy spelling ``keepdims=``, which PyTorch accepts as an alias."""


class _KeepdimNotGiven:
    """The default of ``keepdim``: false, and distinguishable from an explicit ``keepdim=False``."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "False"


KEEPDIM_NOT_GIVEN = _KeepdimNotGiven()


def resolve_keepdim(function_name: str, keepdim, keepdims) -> bool:
    """Returns the ``keepdim`` flag given as ``keepdim=`` or as numpy's spelling ``keepdims=``, PyTorch's alias.

    Like PyTorch, giving both is a TypeError rather than one silently winning.
    """
    if keepdims is None:
        return False if keepdim is KEEPDIM_NOT_GIVEN else keepdim
    if keepdim is not KEEPDIM_NOT_GIVEN:
        raise TypeError(f"{function_name}() got an unexpected keyword argument 'keepdims'")
    return keepdims
