// ctnn/io/model_file.hpp: saving and loading a model's parameters, with the fitted
// preprocessing and, for a training checkpoint, the optimizer's state.
//
// save(path, model, &preprocessing) and save_checkpoint(path, model, optimizer) write, atomically (io/atomic_file.hpp: a crash
// mid-save leaves the previous file intact), one file in the ctnn model format, version 1:
//
//   offset  size  field (integers little-endian)
//   0       8     magic "CTNNMODL"
//   8       4     format version (1)
//   12      4     parameter storage: 4 float32, 8 float64, 0x102 fp16, 0x202 bf16 (the low
//                 byte is b, the bytes per value; half storage loads into a float model)
//   16      4     L, length of the topology text
//   20      L     topology text, e.g. "Input(None, 28, 28, 1) > Conv2D[3x3 stride 1 valid]
//                 (None, 26, 26, 32) > ... > Softmax(None, 10)": every layer with its settings
//                 and output shape; a model loads only a file of the same topology
//   20+L    8     P, number of parameters (the model's arena, in its order)
//   28+L    P*b   the parameters, IEEE-754 little-endian (binary16 / bfloat16 for half storage)
//   ...     4     S, number of sections; then S times: 4-byte tag, 8-byte length, the bytes:
//                 "PREP" the fitted data::Preprocessing (its own block, data/preprocess.hpp)
//                 "OPTM" optimizer: u32 name length, name ("Adam", "SGD"), u32 H, H float64
//                        hyperparameters, u64 step count, u32 B, B buffers of P parameters
//                 "STAT" the non-trainable state arena of a model with stateful layers (moving
//                        statistics): u64 count, the values in the model's own type; present
//                        exactly when the model has state (older files have none)
//                 "TOPH" u64 Model::topology_hash, the constant an exported header also holds
//                        (model_file_info() reads it without a model type; older files have none)
//   end-4   4     CRC-32 (zlib's) of every byte before it
//
// load(path, model) and load_checkpoint(path, model, optimizer) check, in this order, that the file is complete, its magic and version,
// the checksum, the parameter type and the topology, and only then changes the model: a wrong,
// truncated or corrupted file is a ctnn::Error that says which check failed, with the values,
// and leaves the model (and optimizer and preprocessing) untouched.
#pragma once
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <iterator>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctnn/core/bytes.hpp"
#include "ctnn/core/error.hpp"
#include "ctnn/core/sequential.hpp"
#include "ctnn/data/preprocess.hpp"
#include "ctnn/kernels/half.hpp"
#include "ctnn/io/atomic_file.hpp"

namespace ctnn {

static_assert(std::endian::native == std::endian::little,
              "ctnn's model files store little-endian values; this target is big-endian.");

// "Input(None, 28, 28, 1) > Conv2D[3x3 stride 1 valid](None, 26, 26, 32) > ...": the model's
// layers with their settings and output shapes, the identity a model file must match. A Graph's
// text adds each layer's edges, " <- 0 3" (the tensors it reads: 0 the input, k the output of
// the k-th layer, from 1), so a graph of the same layers wired otherwise is another topology.
template <class Model>
std::string topology() {
  // Appends only: GCC 12 at -O3 warns (-Wrestrict, falsely) on `"[" + std::string + "]"` here.
  std::string s = "Input";
  s += Model::input_shape::str();
  detail::static_for<Model::num_layers>([&]<std::size_t I>() {
    using L = typename Model::template layer<I>;
    s += " > ";
    s += L::name;
    if constexpr (requires { L::config(); }) {
      s += '[';
      s += L::config();
      s += ']';
    }
    s += L::output_shape::str();
    if constexpr (!Model::is_chain) {  // a graph's edges: the tensors each layer reads
      s += " <-";
      for (std::size_t t : Model::template inputs_of<I>) {
        s += ' ';
        s += std::to_string(t);
      }
    }
  });
  return s;
}

namespace io {

inline constexpr char kModelMagic[8] = {'C', 'T', 'N', 'N', 'M', 'O', 'D', 'L'};
inline constexpr std::uint32_t kModelFormatVersion = 1;

namespace detail {

using ctnn::detail::ByteReader;  // the codec shared with data/preprocess.hpp (core/bytes.hpp)
using ctnn::detail::ByteWriter;
using ctnn::detail::crc32_of;

inline std::vector<char> read_whole_file(const std::string& path) {
  // POSIX calls rather than std::ifstream: a directory opens as a stream and then throws
  // std::ios_base::failure from the read, which names no path.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("Cannot open the model file \"", path, "\": ", std::strerror(errno), ".");
  struct ::stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    const int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    fail("Cannot read the model file \"", path, "\": ",
         err == EISDIR ? "it is a directory, not a file" : std::strerror(err), ".");
  }
  std::vector<char> data;
  if (S_ISREG(st.st_mode)) data.reserve(std::size_t(st.st_size));
  char chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail("Reading the model file \"", path, "\" failed after ", data.size(), " bytes: ",
           std::strerror(err), ".");
    }
    if (n == 0) break;
    data.insert(data.end(), chunk, chunk + n);
  }
  ::close(fd);
  return data;
}

template <class Optimizer>
concept Checkpointable = requires(Optimizer& o, const Optimizer& c) {
  { c.hyperparameters() } -> std::same_as<std::vector<double>>;
  c.state_buffers();
  o.restore_state(std::uint64_t{}, std::size_t{}, std::size_t{});
  { c.iterations() } -> std::same_as<std::uint64_t>;
  Optimizer::name;
};

}  // namespace detail
}  // namespace io

// How save() stores the parameters: as the model's own type, or halved to fp16 / bf16 (round to
// nearest even; a float model only), which halves the file for deployment at a small cost in
// accuracy (report it: deploy/half.hpp; the conversion is kernels/half.hpp). Checkpoints always
// store the model's own type.
enum class WeightStorage : std::uint32_t { native = 0, fp16 = 0x102, bf16 = 0x202 };

struct SaveOptions {
  const data::Preprocessing* preprocessing = nullptr;
  WeightStorage weights = WeightStorage::native;
};

namespace io::detail {

struct NoOptimizer {
  static constexpr std::string_view name = "none";
};

// What besides the parameters a file holds (save) or should restore (load).
template <class Optimizer, class Prep>
struct Parts {
  Optimizer* optimizer = nullptr;
  Prep* preprocessing = nullptr;
};

template <class Model, class Optimizer>
void save_parts(const std::string& path, const Model& model,
                Parts<const Optimizer, const data::Preprocessing> parts,
                WeightStorage storage = WeightStorage::native) {
  using T = typename Model::value_type;
  const auto params = model.parameters();
  std::vector<std::uint16_t> half;
  if (storage != WeightStorage::native) {
    if constexpr (!std::is_same_v<T, float>)
      fail("save(): fp16 / bf16 storage is for float models; this one is double.");
    else {
      half.resize(params.size());
      ctnn::to_half(storage == WeightStorage::fp16 ? ctnn::HalfFormat::fp16 : ctnn::HalfFormat::bf16,
                      params, half);
    }
  }
  write_atomically(path, [&](std::ostream& raw) {
    ByteWriter w;
    w.raw(kModelMagic, sizeof kModelMagic);
    w.u32(kModelFormatVersion);
    w.u32(storage == WeightStorage::native ? std::uint32_t(sizeof(T)) : std::uint32_t(storage));
    w.str(topology<Model>());
    w.u64(params.size());
    if (half.empty())
      w.raw(params.data(), params.size_bytes());
    else
      w.raw(half.data(), half.size() * sizeof(std::uint16_t));
    std::uint32_t sections = 0;
    std::string prep, opt, state;
    if constexpr (Model::state_size > 0) {  // non-trainable state, always in the model's type
      ByteWriter st;
      const auto values = model.state();
      st.u64(values.size());
      st.raw(values.data(), values.size_bytes());
      state = st.bytes();
      ++sections;
    }
    if (parts.preprocessing) {
      std::ostringstream s(std::ios::binary);
      parts.preprocessing->save(s);
      prep = std::move(s).str();
      ++sections;
    }
    if constexpr (!std::is_same_v<Optimizer, NoOptimizer>) {
      static_assert(Checkpointable<Optimizer>,
                    "save(): this optimizer cannot be checkpointed (it lacks hyperparameters(), "
                    "state_buffers(), restore_state() or iterations()).");
      if (parts.optimizer) {
        ByteWriter o;
        o.str(Optimizer::name);
        const std::vector<double> h = parts.optimizer->hyperparameters();
        o.u32(std::uint32_t(h.size()));
        for (double v : h) o.f64(v);
        o.u64(parts.optimizer->iterations());
        const auto buffers = parts.optimizer->state_buffers();
        o.u32(std::uint32_t(buffers.size()));
        for (const auto& b : buffers) {
          if (b.size() != params.size())
            fail("save(): the optimizer's state has ", b.size(), " values for a model of ",
                 params.size(), " parameters; was it used with another model?");
          o.raw(b.data(), b.size_bytes());
        }
        opt = o.bytes();
        ++sections;
      }
    }
    ByteWriter hash;  // TOPH, always
    hash.u64(Model::topology_hash);
    ++sections;
    w.u32(sections);
    const auto section = [&](const char (&tag)[5], const std::string& bytes) {
      w.raw(tag, 4);
      w.u64(bytes.size());
      w.raw(bytes.data(), bytes.size());
    };
    if (!prep.empty()) section("PREP", prep);
    if (!opt.empty()) section("OPTM", opt);
    if (!state.empty()) section("STAT", state);
    section("TOPH", hash.bytes());
    w.u32(crc32_of(w.bytes()));  // of every byte before it
    raw.write(w.bytes().data(), std::streamsize(w.bytes().size()));
  });
}

// Checks a whole model file's size, magic, version and checksum (a ctnn::Error names the failed
// check and its values) and returns a reader past the 12-byte header: load() and
// model_file_info() share it.
inline ByteReader checked_reader(std::span<const char> data, const std::string& path) {
  constexpr std::size_t kMinSize = 8 + 4 + 4 + 4 + 8 + 4 + 4;
  if (data.size() < 8 || std::memcmp(data.data(), kModelMagic, 8) != 0)
    fail("\"", path, "\" is not a ctnn model file: it does not start with \"CTNNMODL\"",
         data.size() < 8 ? " (it has fewer than 8 bytes)." : ".");
  if (data.size() < kMinSize)
    fail("The model file \"", path, "\" is truncated: ", data.size(), " bytes, fewer than the ",
         kMinSize, " of an empty model file.");
  std::uint32_t version;
  std::memcpy(&version, data.data() + 8, 4);
  if (version != kModelFormatVersion)
    fail("The model file \"", path, "\" has format version ", version, "; this ctnn reads version ",
         kModelFormatVersion, ".");
  std::uint32_t stored_crc;
  std::memcpy(&stored_crc, data.data() + data.size() - 4, 4);
  const std::uint32_t crc = crc32_of(std::string_view(data.data(), data.size() - 4));
  if (crc != stored_crc)
    fail("The model file \"", path, "\" is corrupted or truncated: its checksum is ", std::hex,
         stored_crc, " but its ", std::dec, data.size() - 4, " bytes sum to ", std::hex, crc,
         std::dec, ".");

  ByteReader r(std::string_view(data.data(), data.size() - 4), "The model file \"" + path + "\"");
  r.take(12, "the header");
  return r;
}

// Parses a whole model file held in `data`; `path` names it in messages.
template <class Model, class Optimizer>
void load_parts(std::span<const char> data, const std::string& path, Model& model,
                Parts<Optimizer, data::Preprocessing> parts) {
  using T = typename Model::value_type;
  ByteReader r = checked_reader(data, path);
  const auto scalar = r.u32("the parameter size");
  const std::string topo = r.str("the topology");
  const std::string want = topology<Model>();
  if (topo != want)
    fail("The model file \"", path, "\" holds another model.\n  file:  ", topo, "\n  model: ", want);
  const bool half = scalar == std::uint32_t(WeightStorage::fp16) ||
                    scalar == std::uint32_t(WeightStorage::bf16);
  if (half && !std::is_same_v<T, float>)
    fail("The model file \"", path, "\" stores ",
         scalar == std::uint32_t(WeightStorage::fp16) ? "fp16" : "bf16",
         " parameters, which load into float models; this model uses double.");
  if (!half && scalar != sizeof(T))
    fail("The model file \"", path, "\" stores ", scalar, "-byte parameters; this model uses ",
         sizeof(T), "-byte ones (float vs double).");
  const auto count = r.u64("the parameter count");
  const auto params = model.parameters();
  if (count != params.size())
    fail("The model file \"", path, "\" has ", count, " parameters; the model has ", params.size(), ".");
  const char* values = r.take(count * (half ? 2 : sizeof(T)), "the parameters");
  std::vector<T> widened;  // half storage, widened before anything changes
  if (half) {
    std::vector<std::uint16_t> h(count);
    std::memcpy(h.data(), values, count * 2);
    widened.resize(count);
    if constexpr (std::is_same_v<T, float>)
      ctnn::from_half(scalar == std::uint32_t(WeightStorage::fp16) ? ctnn::HalfFormat::fp16
                                                                   : ctnn::HalfFormat::bf16,
                      h, widened);
    values = reinterpret_cast<const char*>(widened.data());
  }

  // Parse every section into temporaries before touching the model or the parts.
  const auto sections = r.u32("the section count");
  std::optional<data::Preprocessing> prep;
  bool has_opt = false;
  std::string opt_name;
  std::vector<double> hyper;
  std::uint64_t iterations = 0;
  std::vector<const char*> buffers;
  const char* state = nullptr;
  for (std::uint32_t s = 0; s < sections; ++s) {
    const std::string tag(r.take(4, "a section tag"), 4);
    const auto len = r.u64("a section length");
    const char* bytes = r.take(len, "a section");
    if (tag == "PREP") {
      std::istringstream is(std::string(bytes, std::size_t(len)), std::ios::binary);
      prep = data::Preprocessing::load(is);
    } else if (tag == "OPTM") {
      ByteReader o(std::string_view(bytes, std::size_t(len)), "The model file \"" + path + "\"");
      opt_name = o.str("the optimizer's name");
      const auto nh = o.u32("the optimizer's hyperparameter count");
      if (nh > 64) fail("The model file \"", path, "\" is corrupt: ", nh, " optimizer hyperparameters.");
      for (std::uint32_t i = 0; i < nh; ++i) hyper.push_back(o.f64("a hyperparameter"));
      iterations = o.u64("the optimizer's step count");
      const auto nb = o.u32("the optimizer's buffer count");
      if (nb > 8) fail("The model file \"", path, "\" is corrupt: ", nb, " optimizer buffers.");
      for (std::uint32_t i = 0; i < nb; ++i) buffers.push_back(o.take(count * sizeof(T), "an optimizer buffer"));
      if (o.remaining() != 0)
        fail("The model file \"", path, "\" is corrupt: ", o.remaining(),
             " unexpected bytes at the end of the optimizer section.");
      has_opt = true;
    } else if (tag == "STAT") {
      ByteReader st(std::string_view(bytes, std::size_t(len)), "The model file \"" + path + "\"");
      const auto n = st.u64("the state count");
      if (n != Model::state_size)
        fail("The model file \"", path, "\" has ", n, " state values (non-trainable); the model has ",
             Model::state_size, ".");
      state = st.take(n * sizeof(T), "the state values");
      if (st.remaining() != 0)
        fail("The model file \"", path, "\" is corrupt: ", st.remaining(),
             " unexpected bytes at the end of the state section.");
    } else if (tag == "TOPH") {
      ByteReader th(std::string_view(bytes, std::size_t(len)), "The model file \"" + path + "\"");
      const auto hash = th.u64("the topology hash");
      if (th.remaining() != 0)
        fail("The model file \"", path, "\" is corrupt: ", th.remaining(),
             " unexpected bytes at the end of the topology hash section.");
      // The topology text matched already; a hash that does not is a file written by a ctnn
      // whose hash differs (or an edited file): say so rather than load it.
      if (hash != Model::topology_hash)
        fail("The model file \"", path, "\" has topology hash ", hash,
             " but the model's topology_hash is ", Model::topology_hash,
             " (the topology texts agree: was the file written by another ctnn version?).");
    } else {
      fail("The model file \"", path, "\" has an unknown section \"", tag, "\" (this ctnn knows PREP, ",
           "OPTM, STAT and TOPH).");
    }
  }
  if (r.remaining() != 0)
    fail("The model file \"", path, "\" is corrupt: ", r.remaining(), " unexpected bytes after its sections.");
  if (Model::state_size > 0 && state == nullptr)
    fail("The model file \"", path, "\" holds no layer state, but the model has ", Model::state_size,
         " state values (moving statistics) to load.");
  if (parts.preprocessing && !prep)
    fail("The model file \"", path, "\" holds no preprocessing, but load() was asked for one.");
  if constexpr (!std::is_same_v<Optimizer, NoOptimizer>) {
    if (parts.optimizer) {
      if (!has_opt)
        fail("The model file \"", path, "\" holds no optimizer state (it was saved without one), ",
             "but load() was asked for the ", Optimizer::name, " optimizer's.");
      if (opt_name != Optimizer::name)
        fail("The model file \"", path, "\" holds the state of a ", opt_name, " optimizer, not ",
             Optimizer::name, ".");
      const std::vector<double> probe = parts.optimizer->hyperparameters();
      if (hyper.size() != probe.size())
        fail("The model file \"", path, "\" has ", hyper.size(), " hyperparameters for ", opt_name,
             ", which has ", probe.size(), ".");
    }
  }

  // Everything checked: now change the parts and the model. restore_state() is first because it
  // checks the buffer count before changing anything; nothing after it can fail.
  if constexpr (!std::is_same_v<Optimizer, NoOptimizer>) {
    if (parts.optimizer) {
      auto views = parts.optimizer->restore_state(iterations, buffers.size(), count);
      parts.optimizer->set_hyperparameters(hyper);
      for (std::size_t i = 0; i < views.size(); ++i)
        std::memcpy(views[i].data(), buffers[i], count * sizeof(T));
    }
  }
  std::memcpy(params.data(), values, count * sizeof(T));
  if constexpr (Model::state_size > 0) std::memcpy(model.state().data(), state, Model::state_size * sizeof(T));
  if (parts.preprocessing) *parts.preprocessing = std::move(*prep);
}

template <class Model, class Optimizer>
void load_parts(const std::string& path, Model& model, Parts<Optimizer, data::Preprocessing> parts) {
  const std::vector<char> data = read_whole_file(path);
  load_parts<Model, Optimizer>(std::span<const char>(data), path, model, parts);
}

}  // namespace io::detail

// Writes `model`'s parameters, and the fitted preprocessing if given, to `path` atomically.
template <class Model>
void save(const std::string& path, const Model& model, const data::Preprocessing* preprocessing = nullptr) {
  io::detail::save_parts<Model, io::detail::NoOptimizer>(path, model, {nullptr, preprocessing});
}

// save() with options: e.g. {.preprocessing = &prep, .weights = WeightStorage::fp16}.
template <class Model>
void save(const std::string& path, const Model& model, const SaveOptions& options) {
  io::detail::save_parts<Model, io::detail::NoOptimizer>(path, model, {nullptr, options.preprocessing},
                                                         options.weights);
}

// A training checkpoint: save() plus the optimizer's hyperparameters and state, so training
// resumed after load_checkpoint() takes the same steps it would have taken without the stop.
template <class Model, class Optimizer>
void save_checkpoint(const std::string& path, const Model& model, const Optimizer& optimizer,
                     const data::Preprocessing* preprocessing = nullptr) {
  io::detail::save_parts<Model, Optimizer>(path, model, {&optimizer, preprocessing});
}

// Reads a file written by save() or save_checkpoint() into `model` (and `preprocessing` if
// given: then the file must hold one). Leaves everything untouched when it throws.
template <class Model>
void load(const std::string& path, Model& model, data::Preprocessing* preprocessing = nullptr) {
  io::detail::load_parts<Model, io::detail::NoOptimizer>(path, model, {nullptr, preprocessing});
}

// Reads a checkpoint into `model` and `optimizer` (and `preprocessing` if given).
template <class Model, class Optimizer>
void load_checkpoint(const std::string& path, Model& model, Optimizer& optimizer,
                     data::Preprocessing* preprocessing = nullptr) {
  io::detail::load_parts<Model, Optimizer>(path, model, {&optimizer, preprocessing});
}

// What a model file says about its model, read without a model type: for tools that check a
// file against an exported header (its Model::topology_hash) or print what a file holds.
struct ModelFileInfo {
  std::string topology;                       // the topology() text
  std::optional<std::uint64_t> topology_hash;  // Model::topology_hash (absent in older files)
  std::uint64_t parameters = 0;               // the parameter count (the arena, padded)
  std::uint32_t storage = 0;                  // 4 float32, 8 float64, 0x102 fp16, 0x202 bf16
  std::vector<std::string> sections;          // the section tags in file order ("TOPH", ...)
};

// Reads `path`'s header and section tags, with load()'s checks of completeness, magic, version and
// checksum (a ctnn::Error names the failed check).
inline ModelFileInfo model_file_info(const std::string& path) {
  using io::detail::ByteReader;
  const std::vector<char> data = io::detail::read_whole_file(path);
  ByteReader r = io::detail::checked_reader(data, path);
  ModelFileInfo info;
  info.storage = r.u32("the parameter size");
  info.topology = r.str("the topology");
  info.parameters = r.u64("the parameter count");
  const std::uint32_t bytes_per = info.storage & 0xff;
  if (bytes_per != 2 && bytes_per != 4 && bytes_per != 8)
    fail("The model file \"", path, "\" has an unknown parameter storage ", info.storage, ".");
  if (info.parameters > data.size())
    fail("The model file \"", path, "\" is corrupt: it claims ", info.parameters,
         " parameters in ", data.size(), " bytes.");
  r.take(info.parameters * bytes_per, "the parameters");
  const auto sections = r.u32("the section count");
  for (std::uint32_t k = 0; k < sections; ++k) {
    std::string tag(r.take(4, "a section tag"), 4);
    const auto len = r.u64("a section length");
    const char* bytes = r.take(len, "a section");
    if (tag == "TOPH" && len == 8) {
      std::uint64_t h;
      std::memcpy(&h, bytes, 8);
      info.topology_hash = h;
    }
    info.sections.push_back(std::move(tag));
  }
  return info;
}

// load() from the bytes of a whole model file in memory; `name` stands in for the path in
// messages. Same checks, same guarantee: untouched on error.
template <class Model>
void load_from_memory(std::span<const char> bytes, const std::string& name, Model& model,
                      data::Preprocessing* preprocessing = nullptr) {
  io::detail::load_parts<Model, io::detail::NoOptimizer>(bytes, name, model,
                                                         {nullptr, preprocessing});
}

// load_checkpoint() from the bytes of a whole model file in memory.
template <class Model, class Optimizer>
void load_checkpoint_from_memory(std::span<const char> bytes, const std::string& name,
                                 Model& model, Optimizer& optimizer,
                                 data::Preprocessing* preprocessing = nullptr) {
  io::detail::load_parts<Model, Optimizer>(bytes, name, model, {&optimizer, preprocessing});
}

}  // namespace ctnn
