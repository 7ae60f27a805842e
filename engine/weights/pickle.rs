//! A restricted unpickler for PyTorch checkpoints (`torch.save`'s zip layout: `*/data.pkl` plus one
//! raw storage file per tensor under `*/data/`). It rebuilds tensors and plain containers and
//! never executes anything: a `GLOBAL` is resolved against a fixed list — the containers, torch's
//! tensor rebuild and storage types, and a few inert record classes PyTorch Lightning and pyannote
//! checkpoints carry in their metadata (kept as opaque records) — and anything else is refused
//! with an error naming it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{DType, TensorView, WeightStore};
use crate::error::{Error, Result};

/// A value of the pickle.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Dicts (and OrderedDicts) in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A storage reference from `BINPERSID`: (key of `data/<key>`, element type).
    Storage {
        key: String,
        dtype: DType,
    },
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`.
    Tensor(TensorRef),
    /// An allowed global before it is called.
    Global(Global),
    /// An inert record (an allowed metadata class): its constructor arguments and state, never run.
    Record {
        class: String,
        args: Vec<Value>,
        state: Option<Box<Value>>,
    },
}

/// A tensor as the pickle describes it; the bytes live in the archive's storage file.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    pub storage: String,
    pub dtype: DType,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub strides: Vec<usize>,
}

/// The globals a checkpoint may name.
#[derive(Clone, Debug, PartialEq)]
pub enum Global {
    OrderedDict,
    Dict,
    List,
    Long,
    DefaultDict,
    RebuildTensor,
    StorageType(DType),
    /// A metadata class kept as an opaque record (`module.name`).
    Record(String),
}

/// Metadata classes of PyTorch Lightning / pyannote / omegaconf checkpoints: kept as records.
const RECORD_MODULES: &[&str] = &[
    "omegaconf.base",
    "omegaconf.listconfig",
    "omegaconf.dictconfig",
    "omegaconf.nodes",
    "pyannote.audio.core.model",
    "pyannote.audio.core.task",
    "torch.torch_version",
    "typing",
];

fn resolve_global(module: &str, name: &str) -> Result<Global, String> {
    Ok(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("collections", "defaultdict") => Global::DefaultDict,
        ("__builtin__" | "builtins", "dict") => Global::Dict,
        ("__builtin__" | "builtins", "list") => Global::List,
        ("__builtin__" | "builtins", "long" | "int") => Global::Long,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensor,
        ("torch", "FloatStorage") => Global::StorageType(DType::F32),
        ("torch", "HalfStorage") => Global::StorageType(DType::F16),
        ("torch", "BFloat16Storage") => Global::StorageType(DType::BF16),
        ("torch", "LongStorage") => Global::StorageType(DType::I64),
        ("torch", "IntStorage") => Global::StorageType(DType::I32),
        ("torch", "ShortStorage") => Global::StorageType(DType::I16),
        ("torch", "CharStorage") => Global::StorageType(DType::I8),
        ("torch", "ByteStorage") => Global::StorageType(DType::U8),
        (m, n) if RECORD_MODULES.contains(&m) => Global::Record(format!("{m}.{n}")),
        (m, n) => return Err(format!("refusing to load `{m}.{n}`: not a tensor, container or known metadata class")),
    })
}

/// Run the pickle program `data` (protocols 2–5, the opcodes torch.save and Lightning emit).
pub fn unpickle(data: &[u8]) -> Result<Value, String> {
    let mut vm = Machine { data, pos: 0, stack: Vec::new(), marks: Vec::new(), memo: BTreeMap::new() };
    vm.run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: BTreeMap<u32, Value>,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or("the pickle ends inside an opcode")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn text(&mut self, n: usize) -> Result<String, String> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a string of the pickle is not UTF-8".to_string())
    }
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or("unterminated GLOBAL")?;
        let s = String::from_utf8(rest[..n].to_vec()).map_err(|_| "GLOBAL is not UTF-8")?;
        self.pos += n + 1;
        Ok(s)
    }
    fn pop(&mut self) -> Result<Value, String> {
        self.stack.pop().ok_or_else(|| "stack underflow".to_string())
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let m = self.marks.pop().ok_or("no MARK on the stack")?;
        if m > self.stack.len() {
            return Err("MARK above the stack".into());
        }
        Ok(self.stack.split_off(m))
    }
    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack.last_mut().ok_or_else(|| "stack underflow".to_string())
    }

    fn run(&mut self) -> Result<Value, String> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.u64()?; // FRAME
                }
                b'.' => return self.pop(), // STOP
                b'(' => self.marks.push(self.stack.len()),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err("stack underflow".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32 as i64;
                    self.stack.push(Value::Int(v));
                }
                b'K' => {
                    let v = self.u8()? as i64;
                    self.stack.push(Value::Int(v));
                }
                b'M' => {
                    let v = self.u16()? as i64;
                    self.stack.push(Value::Int(v));
                }
                0x8a => {
                    // LONG1: little-endian two's complement of n bytes
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?;
                    if n > 8 {
                        return Err("an integer wider than 64 bits".into());
                    }
                    let mut v: i64 = 0;
                    for (i, &b) in bytes.iter().enumerate() {
                        v |= (b as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().expect("8 bytes"));
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.text(n)?;
                    self.stack.push(Value::Str(s));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.text(n)?;
                    self.stack.push(Value::Str(s));
                }
                0x8d => {
                    let n = self.u64()? as usize;
                    let s = self.text(n)?;
                    self.stack.push(Value::Str(s));
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(k, v);
                }
                b'r' => {
                    let k = self.u32()?;
                    let v = self.top()?.clone();
                    self.memo.insert(k, v);
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    let v = self.top()?.clone();
                    self.memo.insert(k, v);
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    let v = self.memo.get(&k).cloned().ok_or("BINGET of an unset memo slot")?;
                    self.stack.push(v);
                }
                b'j' => {
                    let k = self.u32()?;
                    let v = self.memo.get(&k).cloned().ok_or("LONG_BINGET of an unset memo slot")?;
                    self.stack.push(v);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(resolve_global(&module, &name)?));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(resolve_global(&m, &n)?)),
                        _ => return Err("STACK_GLOBAL needs two strings".into()),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.stack.push(persistent_load(pid)?);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = call(callable, args)?;
                    self.stack.push(v);
                }
                0x81 => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let v = call(class, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    match self.top()? {
                        Value::Record { state: s, .. } => *s = Some(Box::new(state)),
                        // OrderedDict / dict state is a dict of attributes: nothing to keep.
                        Value::Dict(_) | Value::Tensor(_) => {}
                        other => return Err(format!("BUILD on {}", kind(other))),
                    }
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    match self.top()? {
                        Value::Dict(d) => d.push((k, v)),
                        other => return Err(format!("SETITEM on {}", kind(other))),
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err("SETITEMS with an odd number of items".into());
                    }
                    let mut it = items.into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    match self.top()? {
                        Value::Dict(d) => d.extend(pairs),
                        other => return Err(format!("SETITEMS on {}", kind(other))),
                    }
                }
                b'a' => {
                    let v = self.pop()?;
                    match self.top()? {
                        Value::List(l) => l.push(v),
                        other => return Err(format!("APPEND on {}", kind(other))),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::List(l) => l.extend(items),
                        other => return Err(format!("APPENDS on {}", kind(other))),
                    }
                }
                other => return Err(format!("unsupported pickle opcode 0x{other:02x} at byte {}", self.pos - 1)),
            }
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::Int(_) => "an int",
        Value::Float(_) => "a float",
        Value::Str(_) => "a string",
        Value::Bytes(_) => "bytes",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Dict(_) => "a dict",
        Value::Storage { .. } => "a storage",
        Value::Tensor(_) => "a tensor",
        Value::Global(_) => "a global",
        Value::Record { .. } => "a record",
    }
}

/// `BINPERSID` of torch.save: `('storage', StorageType, key, location, numel)`.
fn persistent_load(pid: Value) -> Result<Value, String> {
    let Value::Tuple(items) = pid else { return Err("a persistent id that is not a tuple".into()) };
    match items.as_slice() {
        [Value::Str(tag), Value::Global(Global::StorageType(dtype)), Value::Str(key), _, _] if tag == "storage" => {
            Ok(Value::Storage { key: key.clone(), dtype: *dtype })
        }
        _ => Err("a persistent id that is not a torch storage".into()),
    }
}

fn usizes(v: &Value, what: &str) -> Result<Vec<usize>, String> {
    match v {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) if *n >= 0 => Ok(*n as usize),
                _ => Err(format!("tensor {what} holds a non-integer")),
            })
            .collect(),
        _ => Err(format!("tensor {what} is not a tuple")),
    }
}

/// REDUCE / NEWOBJ of an allowed global: containers are built, tensors described, records kept.
fn call(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global(g) = callable else { return Err(format!("calling {}", kind(&callable))) };
    let Value::Tuple(args) = args else { return Err("call arguments are not a tuple".into()) };
    match g {
        Global::OrderedDict | Global::Dict | Global::DefaultDict => Ok(Value::Dict(Vec::new())),
        Global::List => Ok(Value::List(match args.into_iter().next() {
            Some(Value::List(l)) => l,
            _ => Vec::new(),
        })),
        Global::Long => match args.first() {
            Some(Value::Int(n)) => Ok(Value::Int(*n)),
            _ => Err("long() of a non-integer".into()),
        },
        Global::RebuildTensor => match args.as_slice() {
            [Value::Storage { key, dtype }, Value::Int(offset), size, stride, ..] => Ok(Value::Tensor(TensorRef {
                storage: key.clone(),
                dtype: *dtype,
                offset: *offset as usize,
                shape: usizes(size, "size")?,
                strides: usizes(stride, "stride")?,
            })),
            _ => Err("_rebuild_tensor_v2 with unexpected arguments".into()),
        },
        Global::StorageType(_) => Err("a storage type called directly".into()),
        Global::Record(class) => Ok(Value::Record { class, args, state: None }),
    }
}

impl Value {
    /// The value under `key` of a dict.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(d) => d.iter().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// A `torch.save` checkpoint: the unpickled object and the archive's storages, tensors made
/// contiguous in their stored type. Implements [`WeightStore`] over the tensors of `state_dict`
/// (or of the top-level dict when it has none).
pub struct TorchCheckpoint {
    path: PathBuf,
    pub object: Value,
    tensors: BTreeMap<String, (DType, Vec<usize>, Vec<u8>)>,
}

impl TorchCheckpoint {
    pub fn open(path: &Path) -> Result<Self> {
        let fail = |what: String| Error::format(path, what);
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut archive = zip::ZipArchive::new(file)
            .map_err(|e| fail(format!("not a PyTorch zip checkpoint (torch.save ≥ 1.6): {e}")))?;
        let pkl_name = (0..archive.len())
            .filter_map(|i| archive.name_for_index(i).map(str::to_string))
            .find(|n| n.ends_with("/data.pkl") || n == "data.pkl")
            .ok_or_else(|| fail("no data.pkl in the archive".into()))?;
        let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
        let mut pkl = Vec::new();
        archive
            .by_name(&pkl_name)
            .and_then(|mut f| f.read_to_end(&mut pkl).map_err(Into::into))
            .map_err(|e| fail(format!("{pkl_name}: {e}")))?;
        let object = unpickle(&pkl).map_err(|e| fail(format!("{pkl_name}: {e}")))?;
        let dict = object.get("state_dict").unwrap_or(&object);
        let Value::Dict(entries) = dict else { return Err(fail("the checkpoint holds no dict of tensors".into())) };
        let mut storages: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut tensors = BTreeMap::new();
        for (k, v) in entries {
            let (Value::Str(name), Value::Tensor(t)) = (k, v) else { continue };
            if !storages.contains_key(&t.storage) {
                let entry = format!("{prefix}data/{}", t.storage);
                let mut bytes = Vec::new();
                archive
                    .by_name(&entry)
                    .and_then(|mut f| f.read_to_end(&mut bytes).map_err(Into::into))
                    .map_err(|e| fail(format!("tensor `{name}`: storage {entry}: {e}")))?;
                storages.insert(t.storage.clone(), bytes);
            }
            let bytes = contiguous(t, &storages[&t.storage]).map_err(|e| fail(format!("tensor `{name}`: {e}")))?;
            tensors.insert(name.clone(), (t.dtype, t.shape.clone(), bytes));
        }
        Ok(TorchCheckpoint { path: path.to_path_buf(), object, tensors })
    }

    /// The checkpoint's `hyper_parameters` (PyTorch Lightning), if any.
    pub fn hyper_parameters(&self) -> Option<&Value> {
        self.object.get("hyper_parameters")
    }
}

/// The tensor's elements in row-major order, gathered through its strides.
fn contiguous(t: &TensorRef, storage: &[u8]) -> Result<Vec<u8>, String> {
    let size = t.dtype.size();
    let n: usize = t.shape.iter().product();
    if t.strides.len() != t.shape.len() {
        return Err("shape and strides disagree".into());
    }
    // The last element's position must lie inside the storage.
    let last = t.offset + t.shape.iter().zip(&t.strides).map(|(&d, &s)| d.saturating_sub(1) * s).sum::<usize>();
    if n > 0 && (last + 1) * size > storage.len() {
        return Err(format!(
            "needs element {last} of a storage of {} elements (truncated file?)",
            storage.len() / size
        ));
    }
    let mut out = Vec::with_capacity(n * size);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..n {
        let at = t.offset + index.iter().zip(&t.strides).map(|(i, s)| i * s).sum::<usize>();
        out.extend_from_slice(&storage[at * size..(at + 1) * size]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(out)
}

impl WeightStore for TorchCheckpoint {
    fn path(&self) -> &Path {
        &self.path
    }
    fn names(&self) -> Vec<String> {
        self.tensors.keys().cloned().collect()
    }
    fn view(&self, name: &str) -> Option<TensorView<'_>> {
        self.tensors.get(name).map(|(dtype, shape, bytes)| TensorView { dtype: *dtype, shape: shape.clone(), bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with Python's pickle (protocol 2): {'a': [1, 2.5, 'x'], 'b': (True, None)}
    const PLAIN: &[u8] = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01G@\x04\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00xq\x03eX\x01\x00\x00\x00bq\x04\x88N\x86q\x05u.";

    #[test]
    fn plain_containers_are_rebuilt() {
        let v = unpickle(PLAIN).unwrap();
        assert_eq!(v.get("a"), Some(&Value::List(vec![Value::Int(1), Value::Float(2.5), Value::Str("x".into())])));
        assert_eq!(v.get("b"), Some(&Value::Tuple(vec![Value::Bool(true), Value::None])));
    }

    #[test]
    fn code_is_refused_by_name() {
        // pickle.dumps of os.system('true') via __reduce__: GLOBAL 'posix system' then REDUCE.
        let evil = b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.";
        let err = unpickle(evil).unwrap_err();
        assert!(err.contains("posix.system") && err.contains("refusing"), "{err}");
        let builtins_eval = b"\x80\x02c__builtin__\neval\nX\x01\x00\x00\x001\x85R.";
        assert!(unpickle(builtins_eval).unwrap_err().contains("__builtin__.eval"));
    }

    #[test]
    fn truncated_and_unknown_opcodes_are_errors() {
        assert!(unpickle(&PLAIN[..PLAIN.len() / 2]).is_err());
        assert!(unpickle(b"\x80\x02\xff.").unwrap_err().contains("0xff"));
    }

    #[test]
    fn strided_tensors_are_gathered_in_row_major_order() {
        // A 2x3 view with strides (1, 2) of a 6-element f32 storage: its transpose's layout.
        let storage: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        let t = TensorRef { storage: "0".into(), dtype: DType::F32, offset: 0, shape: vec![2, 3], strides: vec![1, 2] };
        let got: Vec<f32> =
            contiguous(&t, &storage).unwrap().chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(got, vec![0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
        let beyond = TensorRef { offset: 5, ..t };
        assert!(contiguous(&beyond, &storage).unwrap_err().contains("truncated"));
    }
}
