# gdb support for gev: list the greenlets of every hub and show the
# backtrace of a parked one, in a live process (gdb -p PID) or a core file.
#
#   gev greenlets     every hub, and per coroutine: id, name, state, what
#                     it is parked on, and for how long
#   gev bt ID         the backtrace of coroutine ID (the id `gev greenlets`
#                     shows, gev_coro_id), parked or running
#
# Installed beside the library as
# <prefix>/share/gdb/auto-load/<libdir>/libgev.so.<version>-gdb.py, which
# gdb loads when it loads libgev.so (if that directory is in its
# auto-load safe-path: `add-auto-load-safe-path <prefix>/share/gdb`);
# otherwise, or for a program linked with the static library,
# `source tools/gdb/gev.py`.
#
# Everything is read from memory with the layout tables libgev exports
# (gev__debug_coro, gev__debug_hub; see src/coro/debug_table.h), so no
# debug information is needed. The hubs are found on the process-wide
# registry of hubs. A parked coroutine's registers are in the frame its
# switch saved (the layout, offsets included, comes from
# src/arch/switch.h through the table); `gev bt` hands them to gdb's
# unwinder as the caller of the selected thread's innermost frame, prints
# the frames from there, and takes them back, so no register of the
# process is changed (which a core file would not allow anyway).
import re
import time

import gdb
import gdb.unwinder

PTR = 8


def _read(addr, size):
    return bytes(gdb.selected_inferior().read_memory(addr, size))


def _u(addr, size=PTR):
    return int.from_bytes(_read(addr, size), "little")


def _f64(addr):
    import struct
    return struct.unpack("<d", _read(addr, 8))[0]


def _cstr(addr, limit=256):
    if not addr:
        return None
    raw = _read(addr, limit)
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _symbol_address(name):
    sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    if sym is not None:
        return int(sym.value().address)
    msym = gdb.parse_and_eval("(char *)&'%s'" % name)
    return int(msym)


class Table:
    """One of libgev's layout tables: key -> (value, size, str)."""

    def __init__(self, symbol):
        self.entries = {}
        addr = _symbol_address(symbol)
        while True:
            key = _u(addr)
            if not key:
                break
            self.entries[_cstr(key)] = (_u(addr + 8), _u(addr + 16),
                                        _u(addr + 24))
            addr += 32

    def off(self, key):
        return self.entries[key][0]

    def field(self, obj, key):
        value, size, _ = self.entries[key]
        return _u(obj + value, size)

    def text(self, key):
        return _cstr(self.entries[key][2])

    def addr(self, key):
        return self.entries[key][2]


class Gev:
    def __init__(self):
        try:
            self.c = Table("gev__debug_coro")
            self.h = Table("gev__debug_hub")
        except gdb.error as e:
            raise gdb.GdbError("gev: libgev's debugger tables not found "
                               "(is the program linked with gev?): %s" % e)

    def hubs(self):
        h = _u(self.h.addr("hubs"))
        while h:
            yield h
            h = self.h.field(h, "hub.reg_next")

    def coro_name(self, coro):
        if self.c.field(coro, "coro.is_main"):
            return "main"
        return _cstr(self.c.field(coro, "coro.name")) or "<unnamed>"

    def coroutines(self, hub):
        """(kind, name, coro, task or 0, greenlet or 0) of a hub."""
        h = self.h
        thr = h.field(hub, "hub.thr")
        main_task = hub + h.off("hub.main_task")
        yield ("main", "main", self.c.field(thr, "thread.main"), main_task, 0)
        yield ("hub", "hub", h.field(hub, "hub.coro"), 0, 0)
        t = h.field(hub, "hub.plain_tasks")
        while t:
            coro = h.field(t, "task.coro")
            yield ("coroutine", self.coro_name(coro), coro, t, 0)
            t = h.field(t, "task.plain_next")
        g = h.field(hub, "hub.greenlets")
        while g:
            name = _cstr(h.field(g, "greenlet.name"))
            if not name:
                name = "Greenlet-%d" % h.field(g, "greenlet.id")
            task = g + h.off("greenlet.task")
            yield ("greenlet", name, h.field(g, "greenlet.coro"), task, g)
            g = h.field(g, "greenlet.next")

    def state(self, hub, coro, task, greenlet):
        h, c = self.h, self.c
        current = c.field(h.field(hub, "hub.thr"), "thread.current")
        if greenlet:
            if h.field(greenlet, "greenlet.ready"):
                return "failed" if h.field(greenlet, "greenlet.err") \
                    else "finished"
            if not h.field(greenlet, "greenlet.started"):
                return "not started"
        if not coro:
            return "finished"
        if coro == current:
            return "running"
        if c.field(coro, "coro.dead"):
            return "finished"
        if task and h.field(task, "task.parked"):
            return "parked"
        if not c.field(coro, "coro.started"):
            return "not started"
        return "suspended"

    def find(self, wanted):
        for hub in self.hubs():
            for kind, name, coro, task, g in self.coroutines(hub):
                if coro and self.c.field(coro, "coro.id") == wanted:
                    return hub, kind, name, coro, task, g
        return None


def _is_core():
    try:
        conn = gdb.selected_inferior().connection
        if conn is not None and conn.type == "core":
            return True
    except AttributeError:
        pass
    return "core file" in gdb.execute("info target", to_string=True).lower()


def _now(gev):
    """The time waits are measured to: the clock, or for a core file the
    latest hub turn (the process's last "now" that memory still holds)."""
    if not _is_core():
        return time.monotonic(), ""
    latest = max((_f64(hub + gev.h.off("hub.turn_time"))
                  for hub in gev.hubs()), default=0.0)
    return latest, " (to the last hub turn)"


class GevPrefix(gdb.Command):
    """gev: greenlets and hubs of a gev program (gev greenlets, gev bt ID)."""

    def __init__(self):
        super().__init__("gev", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


class GevGreenlets(gdb.Command):
    """List every hub and its coroutines: id, name, state, what a parked
    one waits on, and for how long."""

    def __init__(self):
        super().__init__("gev greenlets", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        gev = Gev()
        now, note = _now(gev)
        nhubs = 0
        for hub in gev.hubs():
            nhubs += 1
            h = gev.h
            gdb.write("hub %d (thread LWP %d): %d turns\n" % (
                h.field(hub, "hub.id"), h.field(hub, "hub.tid"),
                h.field(hub, "hub.turns")))
            gdb.write("  %6s  %-20s %-12s %s\n" % ("id", "name", "state",
                                                   "waiting for"))
            for kind, name, coro, task, g in gev.coroutines(hub):
                ident = gev.c.field(coro, "coro.id") if coro else 0
                st = gev.state(hub, coro, task, g)
                wait = ""
                if st == "parked":
                    what = _cstr(h.field(task, "task.what")) or "?"
                    since = _f64(task + h.off("task.parked_at"))
                    wait = "%s for %.3f s%s" % (what, max(0.0, now - since),
                                                note)
                elif kind == "hub" and st == "suspended":
                    continue
                label = name if kind in ("greenlet", "main", "hub") \
                    else "%s (%s)" % (name, kind)
                gdb.write("  %6s  %-20s %-12s %s\n" % (
                    ident or "-", label, st, wait))
        if not nhubs:
            gdb.write("gev: no hub in this process\n")


class ParkedUnwinder(gdb.unwinder.Unwinder):
    """While armed, makes the saved frame of a parked coroutine the caller
    of the selected thread's innermost frame."""

    def __init__(self):
        super().__init__("gev-parked")
        self.regs = None

    def __call__(self, pending_frame):
        if self.regs is None or pending_frame.level() != 0:
            return None
        pc = pending_frame.read_register("pc")
        # The innermost frame's id takes the parked stack's address, so
        # that gdb sees the parked frames as outer to it.
        sp = gdb.Value(self.regs["__sp_inner"]).cast(pc.type)
        fid = FrameId(sp, pc)
        info = pending_frame.create_unwind_info(fid)
        for name, value in self.regs.items():
            if not name.startswith("__"):
                info.add_saved_register(name, gdb.Value(value).cast(
                    pending_frame.read_register(name).type))
        return info


class FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


_unwinder = ParkedUnwinder()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


def _saved_registers(gev, coro):
    """The registers a parked coroutine resumes with, from its frame."""
    sp = gev.c.field(coro, "coro.sp")
    size = gev.c.off("frame.size")
    regs = {}
    for item in gev.c.text("frame.regs").split():
        name, off = item.split(":")
        regs[name] = _u(sp + int(off))
    arch = gev.c.text("arch")
    regs["rsp" if arch == "x86_64" else "sp"] = sp + size
    regs["__sp_inner"] = sp
    if arch == "x86_64":
        regs["rip"] = regs.pop("pc")
    return regs


def _print_frames(first):
    frame, level = first, 0
    while frame is not None and level < 64:
        name = frame.name() or "??"
        sal = frame.find_sal()
        where = ""
        if sal is not None and sal.symtab is not None:
            where = " at %s:%d" % (sal.symtab.filename, sal.line)
        else:
            lib = gdb.solib_name(frame.pc())
            if lib:
                where = " from %s" % lib
        gdb.write("#%-2d 0x%016x in %s ()%s\n" % (level, frame.pc(), name,
                                                 where))
        level += 1
        try:
            frame = frame.older()
        except gdb.error as e:
            gdb.write("(unwinding stopped: %s)\n" % e)
            break


def _thread_of(tid):
    for t in gdb.selected_inferior().threads():
        if t.ptid[1] == tid:
            return t
    return None


class GevBt(gdb.Command):
    """Backtrace of a coroutine by its id (gev greenlets lists ids)."""

    def __init__(self):
        super().__init__("gev bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        try:
            wanted = int(arg.strip(), 0)
        except ValueError:
            raise gdb.GdbError("usage: gev bt ID")
        gev = Gev()
        found = gev.find(wanted)
        if found is None:
            raise gdb.GdbError("gev: no coroutine with id %d" % wanted)
        hub, kind, name, coro, task, g = found
        st = gev.state(hub, coro, task, g)
        gdb.write("coroutine %d (%s %s): %s\n" % (wanted, kind, name, st))
        if st == "running":
            thread = _thread_of(gev.h.field(hub, "hub.tid"))
            if thread is None:
                raise gdb.GdbError("gev: its thread is not in this process")
            old = gdb.selected_thread()
            thread.switch()
            try:
                _print_frames(gdb.newest_frame())
            finally:
                old.switch()
            return
        if st not in ("parked", "suspended"):
            return
        if not gev.c.off("frame.known"):
            raise gdb.GdbError("gev: this build's switch (%s) keeps no frame "
                               "gdb can read" % gev.c.text("arch"))
        if gev.c.field(coro, "coro.mode") == gev.c.off("mode.shared"):
            thr = gev.c.field(coro, "coro.thr")
            if gev.c.field(thr, "thread.occupant") != coro:
                gdb.write("(stack saved (%d bytes) on the heap "
                          "while another coroutine occupies the shared region)\n"
                          % gev.c.field(coro, "coro.saved_len"))
                return
        _unwinder.regs = _saved_registers(gev, coro)
        gdb.invalidate_cached_frames()
        try:
            _print_frames(gdb.newest_frame().older())
        finally:
            _unwinder.regs = None
            gdb.invalidate_cached_frames()


GevPrefix()
GevGreenlets()
GevBt()
