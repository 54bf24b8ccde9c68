"""Names the torch lowering cannot give a submodule, without importing torch.

The torch lowering makes every graph node with parameters a submodule of a
`torch.fx.GraphModule`, named after the node. A name that is already an attribute of a
GraphModule (and so of every `torch.nn.Module`: `train`, `to`, `graph`, ...) would be
refused by torch or mistaken for its own, so elaboration rejects such node names up front,
where it can point at the spec. This list is the torch lowering's knowledge, kept here so
that the front end can ask it without loading torch; tests/test_elaborate.py checks it
against the installed torch.
"""

from __future__ import annotations

TORCH_ATTRIBUTES = frozenset({
    "T_destination", "add_module", "add_submodule", "apply", "bfloat16", "buffers",
    "call_super_init", "children", "code", "compile", "cpu", "cuda",
    "delete_all_unused_submodules", "delete_submodule", "double", "dump_patches", "eval",
    "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter",
    "get_submodule", "graph", "half", "ipu", "load_state_dict", "meta", "modules", "mtia",
    "named_buffers", "named_children", "named_modules", "named_parameters", "parameters",
    "print_readable", "recompile", "register_backward_hook", "register_buffer",
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "shape_env", "share_memory", "state_dict", "to",
    "to_empty", "to_folder", "train", "training", "type", "xpu", "zero_grad",
})  # fmt: skip
