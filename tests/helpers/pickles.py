"""Reading what a pickle refers to, without unpickling it."""

import pickletools


def globals_in_pickle(path):
    """Module names of every global a pickle refers to."""
    modules, strings = set(), []
    with open(path, "rb") as f:
        for opcode, arg, _ in pickletools.genops(f.read()):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                strings.append(arg)
            elif opcode.name == "STACK_GLOBAL":
                modules.add(strings[-2])
            elif opcode.name == "GLOBAL":
                modules.add(arg.split(" ")[0])
    return modules
