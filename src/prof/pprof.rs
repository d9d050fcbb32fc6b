//! The pprof encoding of a profile: `perftools.profiles.Profile`
//! (github.com/google/pprof, proto/profile.proto), gzip-compressed.
//!
//! A minimal hand-written protobuf writer (varints, length-delimited
//! fields, packed repeated integers): the few messages and fields pprof
//! needs do not warrant a code generator and its build step. Runs outside
//! the allocation path; it allocates (through slabpool itself).
//!
//! Contents: sample types `alloc_objects/count`, `alloc_space/bytes`,
//! `inuse_objects/count`, `inuse_space/bytes` (the default); one sample per
//! stack, its values rounded to integers; one location per distinct
//! address (the return address minus one, inside the call instruction),
//! unsymbolized, tied to the mapping that holds it; the process's
//! executable file mappings from `/proc/self/maps` with each file's GNU
//! build ID, so `go tool pprof` and other readers symbolize offline; the
//! period (the sample interval) and `drop_frames` naming the allocator's
//! own frames.
//!
//! Invariants: string 0 is ""; ids start at 1.

use super::Which;
use super::table::Entry;
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Frames dropped by readers, with every frame below them: the allocator
/// and the standard library's allocation shims.
const DROP_FRAMES: &str = "(slabpool::.*|__rg_.*|__rust_alloc.*|__rust_realloc.*|__rust_dealloc.*|alloc::alloc::.*|<slabpool::.*|malloc|calloc|realloc|posix_memalign|aligned_alloc)";

/// A protobuf message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u32) {
        self.varint(u64::from(field << 3 | wire));
    }
    /// An integer field (omitted when 0, as proto3 does).
    fn int(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v);
        }
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn msg(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }
    fn packed(&mut self, field: u32, values: impl Iterator<Item = u64>) {
        let mut inner = Msg::default();
        for v in values {
            inner.varint(v);
        }
        if !inner.0.is_empty() {
            self.bytes(field, &inner.0);
        }
    }
}

/// The string table.
#[derive(Default)]
struct Strings {
    list: Vec<String>,
    ids: HashMap<String, u64>,
}

impl Strings {
    fn id(&mut self, s: &str) -> u64 {
        if self.list.is_empty() {
            self.list.push(String::new());
            self.ids.insert(String::new(), 0);
        }
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.list.len() as u64;
        self.list.push(s.to_owned());
        self.ids.insert(s.to_owned(), id);
        id
    }
}

/// An executable mapping of a file.
struct Mapping {
    start: u64,
    limit: u64,
    offset: u64,
    file: String,
    build_id: String,
}

/// The executable file mappings of this process.
fn mappings() -> Vec<Mapping> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let mut ids: HashMap<String, (String, Vec<u64>)> = HashMap::new();
    let mut out = Vec::new();
    for line in maps.lines() {
        let mut parts = line.split_ascii_whitespace();
        let (Some(range), Some(perms), Some(offset)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let file = parts.nth(2).unwrap_or("");
        if !perms.contains('x') || !file.starts_with('/') {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(limit), Ok(offset)) = (
            u64::from_str_radix(a, 16),
            u64::from_str_radix(b, 16),
            u64::from_str_radix(offset, 16),
        ) else {
            continue;
        };
        let info = ids
            .entry(file.to_owned())
            .or_insert_with(|| elf_info(file).unwrap_or_default());
        // The kernel maps from the page holding a segment's first byte;
        // readers (pprof among them) expect the mapping to start at the
        // segment's own offset, as the linker wrote it.
        let (mut start, mut offset) = (start, offset);
        if let Some(&seg) = info.1.iter().find(|&&o| o > offset && o & !0xfff == offset) {
            start += seg - offset;
            offset = seg;
        }
        out.push(Mapping {
            start,
            limit,
            offset,
            file: file.to_owned(),
            build_id: info.0.clone(),
        });
    }
    out
}

/// The GNU build ID of the ELF file at `path`, in hex.
#[cfg(test)]
pub fn build_id(path: &str) -> Option<String> {
    elf_info(path).map(|i| i.0).filter(|id| !id.is_empty())
}

/// The GNU build ID (hex, or empty) of the ELF file at `path`, and the
/// file offsets of its loaded executable segments.
fn elf_info(path: &str) -> Option<(String, Vec<u64>)> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut eh = [0u8; 64];
    f.read_exact(&mut eh).ok()?;
    // ELF64, little-endian (x86_64 and aarch64 Linux).
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let phoff = u64_at(&eh, 32);
    let phentsize = u16_at(&eh, 54);
    let phnum = u16_at(&eh, 56);
    if phentsize < 56 || phnum > 512 {
        return None;
    }
    let mut ph = vec![0u8; phentsize * phnum];
    f.seek(SeekFrom::Start(phoff)).ok()?;
    f.read_exact(&mut ph).ok()?;
    let mut segments = Vec::new();
    let mut id = String::new();
    for i in 0..phnum {
        let h = &ph[i * phentsize..];
        // PT_LOAD, executable.
        if u32_at(h, 0) == 1 && u32_at(h, 4) & 1 != 0 {
            segments.push(u64_at(h, 8));
        }
        if u32_at(h, 0) != 4 || !id.is_empty() {
            continue; // PT_NOTE
        }
        let (off, size) = (u64_at(h, 8), u64_at(h, 32) as usize);
        if size > 1 << 16 {
            continue;
        }
        let mut notes = vec![0u8; size];
        f.seek(SeekFrom::Start(off)).ok()?;
        f.read_exact(&mut notes).ok()?;
        let mut at = 0;
        while at + 12 <= notes.len() {
            let (namesz, descsz, kind) = (
                u32_at(&notes, at),
                u32_at(&notes, at + 4),
                u32_at(&notes, at + 8),
            );
            let name = at + 12;
            let desc = name + namesz.next_multiple_of(4);
            let end = desc + descsz.next_multiple_of(4);
            if end > notes.len() {
                break;
            }
            // NT_GNU_BUILD_ID, name "GNU\0".
            if kind == 3 && &notes[name..name + namesz] == b"GNU\0" {
                id = notes[desc..desc + descsz]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                break;
            }
            at = end;
        }
    }
    Some((id, segments))
}

/// Seconds since the epoch, in nanoseconds.
fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The profile of `entries`, gzip-compressed.
pub fn encode(entries: &[Entry], which: Which, interval: u64) -> io::Result<Vec<u8>> {
    let mut strings = Strings::default();
    let mut p = Msg::default();
    for (kind, unit) in [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ] {
        let mut vt = Msg::default();
        vt.int(1, strings.id(kind));
        vt.int(2, strings.id(unit));
        p.msg(1, vt);
    }
    let maps = mappings();
    let mut locations: HashMap<u64, u64> = HashMap::new();
    let mut location_msgs = Vec::new();
    for e in entries {
        let (objects, space) = match which {
            Which::Live => (e.inuse_objects, e.inuse_space),
            Which::Peak => (e.peak_objects, e.peak_space),
        };
        let values = [e.alloc_objects, e.alloc_space, objects, space];
        if values.iter().all(|&v| v.round() <= 0.0) {
            continue;
        }
        let mut ids = Vec::with_capacity(e.depth);
        for &ret in &e.frames[..e.depth] {
            let addr = ret as u64 - 1;
            let next = locations.len() as u64 + 1;
            let id = *locations.entry(addr).or_insert_with(|| {
                let mut l = Msg::default();
                l.int(1, next);
                let mapping = maps.iter().position(|m| m.start <= addr && addr < m.limit);
                l.int(2, mapping.map_or(0, |i| i as u64 + 1));
                l.int(3, addr);
                location_msgs.push(l);
                next
            });
            ids.push(id);
        }
        let mut s = Msg::default();
        s.packed(1, ids.into_iter());
        s.packed(2, values.iter().map(|&v| v.round().max(0.0) as i64 as u64));
        p.msg(2, s);
    }
    for (i, m) in maps.iter().enumerate() {
        let mut mm = Msg::default();
        mm.int(1, i as u64 + 1);
        mm.int(2, m.start);
        mm.int(3, m.limit);
        mm.int(4, m.offset);
        mm.int(5, strings.id(&m.file));
        mm.int(6, strings.id(&m.build_id));
        p.msg(3, mm);
    }
    for l in location_msgs {
        p.msg(4, l);
    }
    let drop = strings.id(DROP_FRAMES);
    let space = strings.id("space");
    let bytes = strings.id("bytes");
    let default = strings.id("inuse_space");
    let comment = strings.id(match which {
        Which::Live => "slabpool heap profile: live blocks",
        Which::Peak => "slabpool heap profile: live blocks at the peak",
    });
    for s in &strings.list {
        p.bytes(6, s.as_bytes());
    }
    p.int(7, drop);
    p.int(9, now_nanos());
    let mut pt = Msg::default();
    pt.int(1, space);
    pt.int(2, bytes);
    p.msg(11, pt);
    p.int(12, interval);
    p.packed(13, [comment].into_iter());
    p.int(14, default);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&p.0)?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_little_endian_groups_of_seven_bits() {
        let mut m = Msg::default();
        m.varint(1);
        m.varint(300);
        m.varint(u64::MAX);
        assert_eq!(&m.0[..3], &[1, 0xAC, 0x02]);
        assert_eq!(m.0.len(), 3 + 10);
    }

    #[test]
    fn the_test_binary_has_a_build_id() {
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        let id = build_id(exe.to_str().unwrap());
        assert!(id.is_some_and(|h| h.len() >= 16), "no GNU build ID");
    }
}
