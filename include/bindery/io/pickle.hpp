// bindery/io/pickle.hpp — a restricted pickle reader for torch.save's data.pkl. It EXECUTES NOTHING.
//
// The pickle VM is interpreted over a closed set of values (None, bool, int, float, str, tuple,
// list, dict, allowlisted globals, storages, tensors). GLOBAL resolves only against an allowlist —
// collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter, torch.Size, the
// torch.*Storage types and torch dtypes — and REDUCE "calls" only those, as data constructors. Any
// other global, opcode or misuse (SETITEM on a non-dict, APPEND on a non-list, BUILD on a tensor)
// is a FormatError naming the file, the pickle member and the byte offset. Working memory is
// bounded: every object comes from an opcode (so objects <= pickle bytes), plus explicit caps on
// the stack, marks and memo (PickleLimits). Objects live in one arena and refer to each other by
// index, so cyclic pickles (a list appended to itself) cannot leak or recurse.
//
// Persistent ids ('storage', torch.FloatStorage, key, location, numel) become StorageRecords;
// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks) becomes a TensorRecord
// whose strided extent is checked to lie inside its storage (CVE-2026-24747 class).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "bindery/io/dtype.hpp"
#include "bindery/io/file.hpp"

namespace bindery::io {

/// Caps on the pickle VM (defaults are far above what a real state_dict needs).
struct PickleLimits {
  int64_t max_pickle_bytes = int64_t{64} << 20;
  int64_t max_stack = int64_t{1} << 20;    // values on the stack
  int64_t max_marks = 256;                 // nesting of MARK
  int64_t max_memo = int64_t{1} << 22;     // memo entries
  int64_t max_objects = int64_t{1} << 20;  // values created (~20 per tensor in a state_dict)
  int64_t max_rank = 64;                   // tensor dimensions
};

/// One storage named by a persistent id: archive member `<prefix>/data/<key>`.
struct StorageRecord {
  std::string key;
  std::string location;  // "cpu", "cuda:0": informational
  DType dtype = DType::kF32;
  int64_t numel = 0;
  int64_t pickle_offset = 0;  // where the BINPERSID was (for messages)
};

/// One tensor built by _rebuild_tensor_v2: a strided view of a storage.
struct TensorRecord {
  int64_t storage = 0;  // index into PickleResult::storages
  int64_t offset = 0;   // in elements
  std::vector<int64_t> sizes, strides;
  int64_t pickle_offset = 0;
};

namespace pickle {

enum class Kind { kNone, kBool, kInt, kFloat, kString, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
enum class Global { kOrderedDict, kRebuildTensorV2, kRebuildParameter, kSize, kStorageType, kDtype };

/// A value in the arena. `number` holds int/bool values, an index (string, storage, tensor) or a
/// Global; `items` the ids of tuple/list elements or of dict keys and values interleaved.
struct Object {
  Kind kind = Kind::kNone;
  Global global = Global::kOrderedDict;
  DType dtype = DType::kF32;  // kStorageType / kDtype globals
  int64_t number = 0;
  double real = 0.0;
  std::vector<int32_t> items;
};

}  // namespace pickle

/// What a pickle decodes to: the arena, the root object, and the storages and tensors it names.
struct PickleResult {
  std::vector<pickle::Object> objects;
  std::vector<std::string> strings;
  std::vector<StorageRecord> storages;
  std::vector<TensorRecord> tensors;
  int32_t root = 0;
};

namespace detail {

/// Interprets one pickle. `file`/`member`/`base` name it in messages: byte offsets are absolute
/// file offsets (base + position in the pickle).
class PickleMachine {
 public:
  PickleMachine(const std::string& file, const std::string& member, int64_t base, const PickleLimits& limits)
      : file_(file), member_(member), base_(base), limits_(limits) {}

  PickleResult run(const std::string& bytes) {
    data_ = reinterpret_cast<const unsigned char*>(bytes.data());
    size_ = static_cast<int64_t>(bytes.size());
    if (size_ > limits_.max_pickle_bytes)
      fail(0, "pickle of ", size_, " bytes exceeds the limit of ", limits_.max_pickle_bytes);
    result_.objects.reserve(static_cast<size_t>(std::min<int64_t>(size_, 1 << 16)));
    while (true) {
      at_ = pos_;
      const unsigned char op = take_u8();
      if (step(op)) break;
    }
    return std::move(result_);
  }

 private:
  using Object = pickle::Object;
  using Kind = pickle::Kind;

  template <class... Parts>
  [[noreturn]] void fail(int64_t pickle_offset, const Parts&... parts) const {
    throw format_error(file_,
                       ::bindery::detail::concat("pickle '", member_, "' (pickle byte ", pickle_offset, ")"),
                       static_cast<uint64_t>(base_ + pickle_offset), parts...);
  }
  template <class... Parts>
  [[noreturn]] void fail_op(const Parts&... parts) const {
    fail(at_, "opcode 0x", hex(data_[at_]), ": ", parts...);
  }
  static std::string hex(unsigned v) {
    const char* digits = "0123456789abcdef";
    return {digits[(v >> 4) & 15], digits[v & 15]};
  }

  // ---- reading the opcode stream ----
  const unsigned char* take(int64_t n) {
    if (n < 0 || n > size_ - pos_)
      fail(at_, "opcode 0x", hex(data_[at_]), " needs ", n, " bytes but the pickle ends at pickle byte ",
           size_);
    const unsigned char* p = data_ + pos_;
    pos_ += n;
    return p;
  }
  unsigned char take_u8() {
    if (pos_ >= size_) fail(pos_, "the pickle ends without STOP");
    return data_[pos_++];
  }
  std::string take_line() {  // GLOBAL's "module\n" and "name\n"
    for (int64_t i = pos_; i < size_ && i - pos_ <= 256; ++i) {
      if (data_[i] == '\n') {
        std::string line(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(i - pos_));
        pos_ = i + 1;
        return line;
      }
    }
    fail_op("GLOBAL name is unterminated or longer than 256 bytes");
  }

  // ---- arena and stack ----
  int32_t make(Object object) {
    if (static_cast<int64_t>(result_.objects.size()) >= limits_.max_objects)
      fail_op("more than ", limits_.max_objects, " objects");
    result_.objects.push_back(std::move(object));
    return static_cast<int32_t>(result_.objects.size() - 1);
  }
  int32_t make(Kind kind, int64_t number = 0, std::vector<int32_t> items = {}) {
    Object o;
    o.kind = kind;
    o.number = number;
    o.items = std::move(items);
    return make(std::move(o));
  }
  int32_t make_int(int64_t v) { return make(Kind::kInt, v); }
  int32_t make_string(std::string s) {
    result_.strings.push_back(std::move(s));
    return make(Kind::kString, static_cast<int64_t>(result_.strings.size() - 1));
  }
  void push(int32_t id) {
    if (static_cast<int64_t>(stack_.size()) >= limits_.max_stack)
      fail_op("stack exceeds ", limits_.max_stack, " values");
    stack_.push_back(id);
  }
  int32_t pop() {
    if (stack_.size() <= floor()) fail_op("stack underflow");
    const int32_t id = stack_.back();
    stack_.pop_back();
    return id;
  }
  int32_t top() {
    if (stack_.size() <= floor()) fail_op("stack underflow");
    return stack_.back();
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  std::vector<int32_t> pop_mark() {
    if (marks_.empty()) fail_op("no MARK to pop to");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<int32_t> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  Object& obj(int32_t id) { return result_.objects[static_cast<size_t>(id)]; }
  const std::string& str(int32_t id) { return result_.strings[static_cast<size_t>(obj(id).number)]; }
  static const char* kind_name(Kind k) {
    static constexpr const char* kNames[] = {"None", "bool", "int",    "float",   "str",   "tuple",
                                             "list", "dict", "global", "storage", "tensor"};
    return kNames[static_cast<int>(k)];
  }
  void memo_put(uint32_t index) {
    if (static_cast<int64_t>(memo_.size()) >= limits_.max_memo && !memo_.count(index))
      fail_op("memo exceeds ", limits_.max_memo, " entries");
    memo_[index] = top();
  }

  // ---- the opcodes ----
  /// Executes one opcode; true on STOP.
  bool step(unsigned char op) {
    switch (op) {
      case 0x80: {  // PROTO
        const unsigned version = take_u8();
        if (version < 2 || version > 5) fail_op("unsupported pickle protocol ", version);
        return false;
      }
      case 0x95:  // FRAME (protocol 4): a hint only
        take(8);
        return false;
      case '.': {  // STOP
        if (!marks_.empty() || stack_.size() != 1)
          fail_op("STOP with ", stack_.size(), " values and ", marks_.size(), " marks left");
        result_.root = stack_.back();
        return true;
      }
      case '(':  // MARK
        if (static_cast<int64_t>(marks_.size()) >= limits_.max_marks)
          fail_op("MARK nesting exceeds ", limits_.max_marks);
        marks_.push_back(stack_.size());
        return false;
      case 'N':  // NONE
        push(make(Kind::kNone));
        return false;
      case 0x88:
      case 0x89: {  // NEWTRUE, NEWFALSE
        push(make(Kind::kBool, op == 0x88));
        return false;
      }
      case 'J':  // BININT
        push(make_int(read_le<int32_t>(take(4))));
        return false;
      case 'K':  // BININT1
        push(make_int(*take(1)));
        return false;
      case 'M':  // BININT2
        push(make_int(read_le<uint16_t>(take(2))));
        return false;
      case 0x8a: {  // LONG1
        const int64_t n = take_u8();
        if (n > 8) fail_op("LONG1 of ", n, " bytes does not fit int64");
        const unsigned char* p = take(n);
        uint64_t v = 0;
        for (int64_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
        if (n > 0 && n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        push(make_int(static_cast<int64_t>(v)));
        return false;
      }
      case 'G': {  // BINFLOAT: big-endian double
        const unsigned char* p = take(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | p[i];
        Object o;
        o.kind = Kind::kFloat;
        std::memcpy(&o.real, &bits, 8);
        push(make(std::move(o)));
        return false;
      }
      case 'X':
        return push_string(read_le<uint32_t>(take(4)));  // BINUNICODE
      case 0x8c:
        return push_string(take_u8());  // SHORT_BINUNICODE
      case 0x8d: {                      // BINUNICODE8
        const uint64_t n = read_le<uint64_t>(take(8));
        return push_string(n > static_cast<uint64_t>(size_) ? -1 : static_cast<int64_t>(n));
      }
      case '}':
      case ']':
      case ')': {  // EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE
        push(make(op == '}' ? Kind::kDict : (op == ']' ? Kind::kList : Kind::kTuple)));
        return false;
      }
      case 't':
      case 'l':
      case 'd': {  // TUPLE, LIST, DICT from the items above MARK
        std::vector<int32_t> items = pop_mark();
        if (op == 'd' && items.size() % 2 != 0) fail_op("DICT with an odd number of items");
        push(make(op == 't' ? Kind::kTuple : (op == 'l' ? Kind::kList : Kind::kDict), 0, std::move(items)));
        return false;
      }
      case 0x85:
      case 0x86:
      case 0x87: {  // TUPLE1..3
        std::vector<int32_t> items(static_cast<size_t>(op - 0x84));
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push(make(Kind::kTuple, 0, std::move(items)));
        return false;
      }
      case 'q':  // BINPUT
        memo_put(*take(1));
        return false;
      case 'r':  // LONG_BINPUT
        memo_put(read_le<uint32_t>(take(4)));
        return false;
      case 0x94:  // MEMOIZE
        memo_put(static_cast<uint32_t>(memo_.size()));
        return false;
      case 'h':
      case 'j': {  // BINGET, LONG_BINGET
        const uint32_t index = op == 'h' ? *take(1) : read_le<uint32_t>(take(4));
        const auto it = memo_.find(index);
        if (it == memo_.end()) fail_op("memo index ", index, " was never stored");
        push(it->second);
        return false;
      }
      case '0':  // POP
        pop();
        return false;
      case '1':  // POP_MARK
        pop_mark();
        return false;
      case '2':  // DUP
        push(top());
        return false;
      case 'c': {  // GLOBAL
        std::string module = take_line();
        std::string name = take_line();
        push(resolve_global(module, name));
        return false;
      }
      case 0x93: {  // STACK_GLOBAL
        const int32_t name = pop(), module = pop();
        if (obj(name).kind != Kind::kString || obj(module).kind != Kind::kString)
          fail_op("STACK_GLOBAL needs two strings");
        push(resolve_global(str(module), str(name)));
        return false;
      }
      case 'R': {  // REDUCE
        const int32_t args = pop(), callable = pop();
        push(reduce(callable, args));
        return false;
      }
      case 'b': {  // BUILD: only OrderedDict attributes (state_dict._metadata), which are dropped
        const int32_t state = pop();
        const Object& target = obj(top());
        if (target.kind != Kind::kDict) fail_op("BUILD on a ", kind_name(target.kind), " (only on dicts)");
        if (obj(state).kind != Kind::kDict && obj(state).kind != Kind::kNone)
          fail_op("BUILD state must be a dict");
        return false;
      }
      case 'Q': {  // BINPERSID
        push(persistent_load(pop()));
        return false;
      }
      case 's': {  // SETITEM
        const int32_t value = pop(), key = pop();
        auto& target = dict_of(top(), "SETITEM").items;
        target.push_back(key);
        target.push_back(value);
        return false;
      }
      case 'u': {  // SETITEMS
        std::vector<int32_t> items = pop_mark();
        if (items.size() % 2 != 0) fail_op("SETITEMS with an odd number of items");
        auto& target = dict_of(top(), "SETITEMS").items;
        target.insert(target.end(), items.begin(), items.end());
        return false;
      }
      case 'a': {  // APPEND
        const int32_t value = pop();
        list_of(top()).items.push_back(value);
        return false;
      }
      case 'e': {  // APPENDS
        std::vector<int32_t> items = pop_mark();
        auto& target = list_of(top()).items;
        target.insert(target.end(), items.begin(), items.end());
        return false;
      }
      default:
        fail_op("unsupported pickle opcode (bindery reads the protocol-2 subset torch.save writes)");
    }
  }

  bool push_string(int64_t n) {
    if (n < 0 || n > size_ - pos_)
      fail_op("string of ", n, " bytes runs past the end of the pickle (", size_, " bytes)");
    const unsigned char* p = take(n);
    if (!is_valid_utf8(p, n)) fail_op("string is not valid UTF-8");
    push(make_string(std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n))));
    return false;
  }
  Object& dict_of(int32_t id, const char* op) {
    if (obj(id).kind != Kind::kDict) fail_op(op, " on a ", kind_name(obj(id).kind), " (only on dicts)");
    return obj(id);
  }
  Object& list_of(int32_t id) {
    if (obj(id).kind != Kind::kList) fail_op("APPEND on a ", kind_name(obj(id).kind), " (only on lists)");
    return obj(id);
  }

  int32_t resolve_global(const std::string& module, const std::string& name) {
    Object o;
    o.kind = Kind::kGlobal;
    using pickle::Global;
    struct Storage {
      const char* name;
      DType dtype;
    };
    static constexpr Storage kStorages[] = {{"FloatStorage", DType::kF32}, {"DoubleStorage", DType::kF64},
                                            {"HalfStorage", DType::kF16},  {"BFloat16Storage", DType::kBF16},
                                            {"LongStorage", DType::kI64},  {"IntStorage", DType::kI32},
                                            {"ShortStorage", DType::kI16}, {"CharStorage", DType::kI8},
                                            {"ByteStorage", DType::kU8},   {"BoolStorage", DType::kBool}};
    static constexpr Storage kDtypes[] = {{"float32", DType::kF32}, {"float64", DType::kF64},
                                          {"float16", DType::kF16}, {"bfloat16", DType::kBF16},
                                          {"int64", DType::kI64},   {"int32", DType::kI32},
                                          {"int16", DType::kI16},   {"int8", DType::kI8},
                                          {"uint8", DType::kU8},    {"bool", DType::kBool}};
    if (module == "collections" && name == "OrderedDict") {
      o.global = Global::kOrderedDict;
    } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
      o.global = Global::kRebuildTensorV2;
    } else if (module == "torch._utils" && name == "_rebuild_parameter") {
      o.global = Global::kRebuildParameter;
    } else if (module == "torch" && name == "Size") {
      o.global = Global::kSize;
    } else {
      bool found = false;
      for (const Storage& s : kStorages) {
        if (module != "torch" || name != s.name) continue;
        o.global = Global::kStorageType;
        o.dtype = s.dtype;
        found = true;
      }
      for (const Storage& s : kDtypes) {
        if (module != "torch" || name != s.name) continue;
        o.global = Global::kDtype;
        o.dtype = s.dtype;
        found = true;
      }
      if (!found) {
        fail_op("global '", module, ".", name,
                "' is not allowed: bindery loads plain state_dicts (tensors in "
                "dicts) and never runs code from a file");
      }
    }
    return make(std::move(o));
  }

  int64_t int_of(int32_t id, const char* what) {
    if (obj(id).kind != Kind::kInt) fail_op(what, " must be an int, got ", kind_name(obj(id).kind));
    return obj(id).number;
  }
  std::vector<int64_t> ints_of(int32_t id, const char* what) {
    if (obj(id).kind != Kind::kTuple) fail_op(what, " must be a tuple, got ", kind_name(obj(id).kind));
    if (static_cast<int64_t>(obj(id).items.size()) > limits_.max_rank)
      fail_op(what, " has more than ", limits_.max_rank, " dimensions");
    std::vector<int64_t> values;
    for (int32_t item : obj(id).items) values.push_back(int_of(item, what));
    return values;
  }
  // Returns a copy: references into the arena die at the next make().
  std::vector<int32_t> args_of(int32_t id, size_t min, size_t max, const char* what) {
    const Object& args = obj(id);
    if (args.kind != Kind::kTuple || args.items.size() < min || args.items.size() > max) {
      fail_op(what, " takes a tuple of ", min, min == max ? "" : ::bindery::detail::concat("..", max).c_str(),
              " arguments");
    }
    return args.items;
  }

  int32_t reduce(int32_t callable, int32_t args_id) {
    if (obj(callable).kind != Kind::kGlobal)
      fail_op("REDUCE on a ", kind_name(obj(callable).kind), ", not a global");
    switch (obj(callable).global) {
      case pickle::Global::kOrderedDict: {
        args_of(args_id, 0, 0, "OrderedDict()");
        return make(Kind::kDict);
      }
      case pickle::Global::kSize: {
        const auto a = args_of(args_id, 1, 1, "torch.Size");
        ints_of(a[0], "torch.Size");
        return a[0];
      }
      case pickle::Global::kRebuildParameter: {
        const auto a = args_of(args_id, 3, 3, "_rebuild_parameter");
        if (obj(a[0]).kind != Kind::kTensor) fail_op("_rebuild_parameter's data must be a tensor");
        return a[0];
      }
      case pickle::Global::kRebuildTensorV2:
        return rebuild_tensor(args_of(args_id, 6, 7, "_rebuild_tensor_v2"));
      default:
        fail_op("REDUCE on a storage type or dtype, which is not callable here");
    }
  }

  int32_t rebuild_tensor(const std::vector<int32_t> a) {
    if (obj(a[0]).kind != Kind::kStorage)
      fail_op("_rebuild_tensor_v2's first argument must be a storage (persistent id)");
    TensorRecord t;
    t.storage = obj(a[0]).number;
    t.offset = int_of(a[1], "storage_offset");
    t.sizes = ints_of(a[2], "size");
    t.strides = ints_of(a[3], "stride");
    t.pickle_offset = at_;
    if (obj(a[4]).kind != Kind::kBool) fail_op("requires_grad must be a bool");
    if (obj(a[5]).kind != Kind::kDict || !obj(a[5]).items.empty())
      fail_op("backward hooks must be an empty dict");
    if (t.sizes.size() != t.strides.size())
      fail_op("size of rank ", t.sizes.size(), " but stride of rank ", t.strides.size());
    const StorageRecord& storage = result_.storages[static_cast<size_t>(t.storage)];
    // offset + sum((size - 1) * stride) must lie inside the storage, with every step overflow-checked.
    int64_t numel = 1, last = t.offset;
    bool ok = t.offset >= 0 && checked_numel(t.sizes, numel);
    for (size_t d = 0; ok && d < t.sizes.size() && numel > 0; ++d) {
      int64_t reach = 0;
      ok = t.strides[d] >= 0 && checked_mul(t.sizes[d] - 1, t.strides[d], reach) &&
           checked_add(last, reach, last);
    }
    if (!ok || (numel > 0 && last >= storage.numel)) {
      std::string shape = "(";
      for (size_t d = 0; d < t.sizes.size(); ++d) shape += (d ? ", " : "") + std::to_string(t.sizes[d]);
      fail_op("tensor of size ", shape, ") with storage offset ", t.offset, " does not fit its storage '",
              storage.key, "' of ", storage.numel,
              " elements (negative or overflowing extents, or reaching past its end)");
    }
    result_.tensors.push_back(std::move(t));
    return make(Kind::kTensor, static_cast<int64_t>(result_.tensors.size() - 1));
  }

  int32_t persistent_load(int32_t pid) {
    const Object& tuple = obj(pid);
    if (tuple.kind != Kind::kTuple || tuple.items.size() != 5 || obj(tuple.items[0]).kind != Kind::kString ||
        str(tuple.items[0]) != "storage") {
      fail_op("persistent id must be ('storage', storage_type, key, location, numel)");
    }
    const std::vector<int32_t> f = tuple.items;
    if (obj(f[1]).kind != Kind::kGlobal || obj(f[1]).global != pickle::Global::kStorageType)
      fail_op("persistent id's storage type is not a torch.*Storage");
    if (obj(f[2]).kind != Kind::kString || obj(f[3]).kind != Kind::kString)
      fail_op("persistent id's key and location must be strings");
    StorageRecord record;
    record.dtype = obj(f[1]).dtype;
    record.key = str(f[2]);
    record.location = str(f[3]);
    record.numel = int_of(f[4], "storage numel");
    record.pickle_offset = at_;
    if (record.numel < 0) fail_op("storage '", record.key, "' has a negative element count ", record.numel);
    if (record.key.empty() || record.key.find('/') != std::string::npos)
      fail_op("storage key '", record.key, "' is not a plain name");
    int64_t index = 0;
    const auto found = storage_index_.find(record.key);
    if (found == storage_index_.end()) {
      index = static_cast<int64_t>(result_.storages.size());
      storage_index_.emplace(record.key, index);
      result_.storages.push_back(std::move(record));
    } else {
      index = found->second;
      const StorageRecord& known = result_.storages[static_cast<size_t>(index)];
      if (known.dtype != record.dtype || known.numel != record.numel) {
        fail_op("storage '", record.key, "' named again with another dtype or element count");
      }
    }
    return make(Kind::kStorage, index);
  }

  const std::string& file_;
  const std::string& member_;
  int64_t base_;
  PickleLimits limits_;
  const unsigned char* data_ = nullptr;
  int64_t size_ = 0, pos_ = 0, at_ = 0;
  std::vector<int32_t> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, int32_t> memo_;
  std::unordered_map<std::string, int64_t> storage_index_;
  PickleResult result_;
};

}  // namespace detail

/// Decodes `bytes` (a torch.save data.pkl) without executing anything. `file` and `member` name it
/// in errors; `base` is the pickle's byte offset in the file.
inline PickleResult read_pickle(const std::string& bytes, const std::string& file, const std::string& member,
                                int64_t base, const PickleLimits& limits = {}) {
  return detail::PickleMachine(file, member, base, limits).run(bytes);
}

}  // namespace bindery::io
