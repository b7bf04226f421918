//! A Python pickle reader for PyTorch checkpoints: the opcodes of protocols 2 to 5 that
//! `torch.save` writes (Python 3) or wrote (Python 2: `BINSTRING` keys), building plain values.
//! Nothing is executed: a class or function reference stays a [`Value::Global`], a call stays a
//! [`Value::Call`], and the caller decides what they mean. `collections.OrderedDict()` is the
//! one call made here, as an empty dictionary, so that the `SETITEMS` that fill a state dict
//! have something to fill.

use std::collections::HashMap;

/// Most values on the stack and in the memo, and most items in one container: bounds what a
/// hostile file can make this reader allocate (a state dict has a few thousand entries).
const MAX_ITEMS: usize = 1 << 22;

/// Most values a pickle may make in all, copies recalled from the memo included, so that a
/// value recalled into itself over and over cannot grow without bound.
const MAX_VALUES: usize = 1 << 24;

/// Most levels of nesting a value may have (a checkpoint needs about six). Bounds the
/// recursion of everything that walks a value, dropping it included.
const MAX_DEPTH: usize = 64;

/// A value read from a pickle.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A longer integer, as its little-endian two's-complement bytes.
    Long(Vec<u8>),
    /// A float.
    Float(f64),
    /// A text string (`str`; Python 2 byte strings are read as Latin-1).
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A list.
    List(Vec<Value>),
    /// A dictionary, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A reference to a class or function: `module.name`.
    Global {
        /// The module.
        module: String,
        /// The name.
        name: String,
    },
    /// A call (`REDUCE`, `NEWOBJ`) of `callable` with the tuple `args`, not made.
    Call {
        /// What is called.
        callable: Box<Value>,
        /// The arguments.
        args: Box<Value>,
    },
    /// An object with state set by `BUILD`.
    Build {
        /// The object.
        object: Box<Value>,
        /// Its state.
        state: Box<Value>,
    },
    /// A persistent id (`BINPERSID`): in a checkpoint, a storage reference.
    Persistent(Box<Value>),
}

/// Why a pickle could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The data ends inside an opcode or before `STOP`.
    #[error("the pickle ends early (at byte {0})")]
    Truncated(usize),
    /// An opcode this reader does not know.
    #[error("unknown pickle opcode 0x{opcode:02x} at byte {at}")]
    UnknownOpcode {
        /// The opcode.
        opcode: u8,
        /// Its offset.
        at: usize,
    },
    /// The opcodes do not fit together (an empty stack, a missing mark, a bad memo index, …).
    #[error("malformed pickle at byte {at}: {problem}")]
    Malformed {
        /// The offset.
        at: usize,
        /// What is wrong.
        problem: &'static str,
    },
}

/// The reader's state over one byte slice.
struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Values made so far, copies included.
    made: usize,
}

/// Reads one pickle from the start of `bytes`: its value and the number of bytes it took.
pub(crate) fn unpickle(bytes: &[u8]) -> Result<(Value, usize), PickleError> {
    let mut machine = Machine {
        bytes,
        at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        made: 0,
    };
    let value = machine.run()?;
    Ok((value, machine.at))
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(PickleError::Truncated(self.bytes.len()))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, PickleError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, PickleError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    /// A length that must fit in what is left of the data.
    fn length(&mut self, n: u64) -> Result<usize, PickleError> {
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len() - self.at)
            .ok_or(PickleError::Truncated(self.bytes.len()))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.bytes[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or(PickleError::Truncated(self.bytes.len()))?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(text)
    }

    fn malformed(&self, problem: &'static str) -> PickleError {
        PickleError::Malformed {
            at: self.at,
            problem,
        }
    }

    fn push(&mut self, value: Value) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_ITEMS {
            return Err(self.malformed("too many values"));
        }
        self.check_depth(&value)?;
        self.count(1)?;
        self.stack.push(value);
        Ok(())
    }

    /// Counts `n` more values made against [`MAX_VALUES`].
    fn count(&mut self, n: usize) -> Result<(), PickleError> {
        self.made = self.made.saturating_add(n);
        if self.made > MAX_VALUES {
            return Err(self.malformed("too many values in all"));
        }
        Ok(())
    }

    fn check_depth(&self, value: &Value) -> Result<(), PickleError> {
        if depth(value) > MAX_DEPTH {
            return Err(self.malformed("values nested too deeply"));
        }
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(self.malformed("a value is taken across a mark"));
        }
        self.stack
            .pop()
            .ok_or_else(|| self.malformed("empty stack"))
    }

    /// The values pushed since the last mark, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let mark = self.marks.pop().ok_or_else(|| self.malformed("no mark"))?;
        Ok(self.stack.split_off(mark))
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        let at = self.at;
        self.stack.last_mut().ok_or(PickleError::Malformed {
            at,
            problem: "empty stack",
        })
    }

    fn memoize(&mut self, index: u32) -> Result<(), PickleError> {
        let value = self.top()?.clone();
        self.count(size(&value))?;
        if self.memo.len() >= MAX_ITEMS {
            return Err(self.malformed("too many memo entries"));
        }
        self.memo.insert(index, value);
        Ok(())
    }

    fn recall(&mut self, index: u32) -> Result<(), PickleError> {
        let value = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| self.malformed("unknown memo index"))?;
        self.count(size(&value))?;
        self.push(value)
    }

    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.at;
            let opcode = self.u8()?;
            match opcode {
                0x80 => {
                    self.u8()?; // PROTO
                }
                0x95 => {
                    self.u64()?; // FRAME: a hint only
                }
                b'.' => return self.pop(), // STOP
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?.clone();
                    self.count(size(&top))?;
                    self.push(top)?;
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                0x8a | 0x8b => {
                    let n = if opcode == 0x8a {
                        u64::from(self.u8()?)
                    } else {
                        u64::from(self.u32()?)
                    };
                    let n = self.length(n)?;
                    let bytes = self.take(n)?;
                    self.push(long(bytes))?;
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.push(Value::Float(v))?;
                }
                b'X' | 0x8c | 0x8d => {
                    let n = match opcode {
                        b'X' => u64::from(self.u32()?),
                        0x8c => u64::from(self.u8()?),
                        _ => self.u64()?,
                    };
                    let n = self.length(n)?;
                    let text = std::str::from_utf8(self.take(n)?)
                        .map_err(|_| self.malformed("a string is not UTF-8"))?
                        .to_string();
                    self.push(Value::Str(text))?;
                }
                b'T' | b'U' => {
                    let n = if opcode == b'T' {
                        u64::from(self.u32()?)
                    } else {
                        u64::from(self.u8()?)
                    };
                    let n = self.length(n)?;
                    // Python 2 `str`: bytes, read as Latin-1 as torch.load's default does.
                    let text = self.take(n)?.iter().map(|&b| char::from(b)).collect();
                    self.push(Value::Str(text))?;
                }
                b'B' | b'C' | 0x8e => {
                    let n = match opcode {
                        b'B' => u64::from(self.u32()?),
                        b'C' => u64::from(self.u8()?),
                        _ => self.u64()?,
                    };
                    let n = self.length(n)?;
                    let bytes = self.take(n)?.to_vec();
                    self.push(Value::Bytes(bytes))?;
                }
                b')' => self.push(Value::Tuple(Vec::new()))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items))?;
                }
                0x85..=0x87 => {
                    let n = usize::from(opcode - 0x84);
                    if self.stack.len() < n {
                        return Err(self.malformed("a tuple needs more values"));
                    }
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(items))?;
                }
                b']' => self.push(Value::List(Vec::new()))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(items))?;
                }
                b'a' => {
                    let item = self.pop()?;
                    self.extend_list(vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.extend_list(items)?;
                }
                b'}' => self.push(Value::Dict(Vec::new()))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items).ok_or_else(|| self.malformed("odd dict items"))?;
                    self.push(Value::Dict(pairs))?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.extend_dict(vec![(key, value)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = pairs(items).ok_or_else(|| self.malformed("odd dict items"))?;
                    self.extend_dict(pairs)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global { module, name })?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err(self.malformed("STACK_GLOBAL needs two strings"));
                    };
                    self.push(Value::Global { module, name })?;
                }
                b'q' => {
                    let i = self.u8()?;
                    self.memoize(u32::from(i))?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memoize(i)?;
                }
                0x94 => {
                    let i = u32::try_from(self.memo.len()).unwrap_or(u32::MAX);
                    self.memoize(i)?;
                }
                b'h' => {
                    let i = self.u8()?;
                    self.recall(u32::from(i))?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.recall(i)?;
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.push(call(callable, args))?;
                }
                b'b' => {
                    let state = self.pop()?;
                    let object = self.pop()?;
                    // A dictionary's state (an OrderedDict's `_metadata`) adds nothing to it.
                    let built = match object {
                        Value::Dict(_) => object,
                        other => Value::Build {
                            object: Box::new(other),
                            state: Box::new(state),
                        },
                    };
                    self.push(built)?;
                }
                b'Q' => {
                    let id = self.pop()?;
                    self.push(Value::Persistent(Box::new(id)))?;
                }
                _ => return Err(PickleError::UnknownOpcode { opcode, at }),
            }
        }
    }

    fn extend_list(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        if items.iter().any(|item| depth(item) >= MAX_DEPTH) {
            return Err(self.malformed("values nested too deeply"));
        }
        let at = self.at;
        match self.top()? {
            Value::List(list) if list.len() + items.len() <= MAX_ITEMS => {
                list.extend(items);
                Ok(())
            }
            _ => Err(PickleError::Malformed {
                at,
                problem: "APPEND to something that is not a list",
            }),
        }
    }

    fn extend_dict(&mut self, pairs: Vec<(Value, Value)>) -> Result<(), PickleError> {
        if pairs
            .iter()
            .any(|(k, v)| depth(k).max(depth(v)) >= MAX_DEPTH)
        {
            return Err(self.malformed("values nested too deeply"));
        }
        let at = self.at;
        match self.top()? {
            Value::Dict(dict) if dict.len() + pairs.len() <= MAX_ITEMS => {
                dict.extend(pairs);
                Ok(())
            }
            _ => Err(PickleError::Malformed {
                at,
                problem: "SETITEM on something that is not a dict",
            }),
        }
    }
}

/// A `REDUCE`: an `OrderedDict()` (or `dict()`) becomes an empty dictionary, anything else
/// stays a call.
fn call(callable: Value, args: Value) -> Value {
    let is_dict = matches!(&callable, Value::Global { module, name }
        if (module == "collections" && name == "OrderedDict")
            || (module == "builtins" || module == "__builtin__") && name == "dict");
    if is_dict && matches!(&args, Value::Tuple(a) if a.is_empty()) {
        return Value::Dict(Vec::new());
    }
    Value::Call {
        callable: Box::new(callable),
        args: Box::new(args),
    }
}

/// The values directly inside `value`.
fn children(value: &Value) -> Vec<&Value> {
    match value {
        Value::Tuple(items) | Value::List(items) => items.iter().collect(),
        Value::Dict(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        Value::Call { callable, args } => vec![callable, args],
        Value::Build { object, state } => vec![object, state],
        Value::Persistent(id) => vec![id],
        _ => Vec::new(),
    }
}

/// Levels of nesting: 1 for a value with nothing inside. Values on the machine's stack are
/// never deeper than [`MAX_DEPTH`], so this recursion is bounded.
fn depth(value: &Value) -> usize {
    1 + children(value).into_iter().map(depth).max().unwrap_or(0)
}

/// How many values `value` is made of, itself included.
fn size(value: &Value) -> usize {
    1 + children(value).into_iter().map(size).sum::<usize>()
}

/// `LONG1`/`LONG4` bytes: an `Int` when it fits.
fn long(bytes: &[u8]) -> Value {
    if bytes.len() <= 8 {
        let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
        let mut buf = if negative { [0xff; 8] } else { [0; 8] };
        buf[..bytes.len()].copy_from_slice(bytes);
        Value::Int(i64::from_le_bytes(buf))
    } else {
        Value::Long(bytes.to_vec())
    }
}

fn pairs(items: Vec<Value>) -> Option<Vec<(Value, Value)>> {
    if !items.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python2_byte_strings_and_small_ints_read() {
        // pickle.dumps({'a': 1, 'b': [2, -3]}, 2) with Python 2 str keys (SHORT_BINSTRING).
        let bytes = b"\x80\x02}q\x00(U\x01aq\x01K\x01U\x01bq\x02]q\x03(K\x02J\xfd\xff\xff\xffeu.";
        let (value, used) = unpickle(bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(
            value,
            Value::Dict(vec![
                (Value::Str("a".into()), Value::Int(1)),
                (
                    Value::Str("b".into()),
                    Value::List(vec![Value::Int(2), Value::Int(-3)])
                ),
            ])
        );
    }

    #[test]
    fn deep_nesting_and_runaway_copies_are_refused() {
        // 100,000 nested empty tuples: `(` and `t` alternately would nest without end.
        let mut deep = b"\x80\x02".to_vec();
        deep.extend(std::iter::repeat_n(b'(', 100_000));
        deep.extend(std::iter::repeat_n(b't', 100_000));
        deep.push(b'.');
        let err = unpickle(&deep).unwrap_err();
        assert!(err.to_string().contains("nested too deeply"), "{err}");
        // A list of 1,000 items, then again and again a list of 1,000 copies of the last one.
        let mut laughs = b"\x80\x02](".to_vec();
        laughs.extend(std::iter::repeat_n(b'N', 1000));
        laughs.extend(b"eq\x00");
        for level in 0u8..4 {
            laughs.extend(b"](");
            for _ in 0..1000 {
                laughs.extend([b'h', level]);
            }
            laughs.extend([b'e', b'q', level + 1]);
        }
        laughs.push(b'.');
        let err = unpickle(&laughs).unwrap_err();
        assert!(err.to_string().contains("too many values in all"), "{err}");
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let bytes = b"\x80\x02}q\x00(U\x01aq\x01K\x01U\x01bq\x02]q\x03(K\x02J\xfd\xff\xff\xffeu.";
        for cut in 0..bytes.len() {
            assert!(unpickle(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in 0..bytes.len() {
            for value in [0x00, 0xff, b'(', b'.', b'h', b'u'] {
                let mut damaged = bytes.to_vec();
                damaged[at] = value;
                let _ = unpickle(&damaged);
            }
        }
    }
}
