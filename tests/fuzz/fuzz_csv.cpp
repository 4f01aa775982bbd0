// libFuzzer target for the CSV reader (data/csv.hpp parse_csv), then to_dataset
// (data/from_table.hpp) and every cleaning step of data/clean.hpp on what it read. Input: four
// option bytes, then the text.
//   byte 0  bit 0 whitespace, bit 1 header, bit 2 BadNumbers::missing, bits 3-4 skip_lines,
//           bit 5 column 0 categorical, bit 6 column "1" categorical, bit 7 no missing markers
//   byte 1  delimiter: below 0xF0 one of , ; TAB | SPACE, else the byte itself (so invalid ones
//           such as '"' are tried too)
//   byte 2  to_dataset: bits 0-1 no label / label / one target / label keeping category order,
//           bits 2-7 pick the column
//   byte 3  which cleaning steps run and on which columns
// A ctnn::Error is an expected outcome; a table or dataset that comes out must be consistent.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ctnn/data/clean.hpp"
#include "ctnn/data/csv.hpp"
#include "ctnn/data/from_table.hpp"
#include "fuzz_common.hpp"

namespace {

using namespace ctnn::data;
using ctnn_fuzz::bug;

void check_table(const Table& t, const char* what) {
  t.check_consistent();  // a ctnn::Error here escapes the harness: a bug
  if (t.lines.size() != t.rows()) bug(what);
}

void try_dataset(const Table& t, std::uint8_t spec_byte) {
  TableSpec spec;
  const std::size_t col = t.cols() == 0 ? 0 : (spec_byte >> 2) % t.cols();
  switch (spec_byte & 3) {
    case 1: spec.label = col; break;
    case 2: spec.targets = {col}; break;
    case 3:
      spec.label = col;
      spec.keep_category_order = true;
      break;
    default: break;
  }
  std::optional<Dataset> d;
  try {
    d = to_dataset(t, spec);
  } catch (const ctnn::Error& e) {
    ctnn_fuzz::expected(e);
    return;
  }
  d->check_consistent("dataset from the fuzzed table");  // a ctnn::Error here is a bug
  if (d->size() != t.rows()) bug("to_dataset changed the row count");
}

// Runs `step` on a copy of `t`; on success the copy must be consistent and no longer.
template <class Step>
void clean_step(const Table& t, std::uint8_t spec_byte, Step step) {
  Table c = t;
  try {
    const CleanReport r = step(c);
    (void)r.str();
    if (r.rows_after != c.rows() || c.rows() > t.rows()) bug("a cleaning report miscounts rows");
  } catch (const ctnn::Error& e) {
    ctnn_fuzz::expected(e);
    return;
  }
  check_table(c, "a cleaned table is inconsistent");
  if (c.rows() > 0) try_dataset(c, spec_byte);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const std::uint8_t flags = data[0], delim = data[1], spec = data[2], clean = data[3];
  const std::string_view text(reinterpret_cast<const char*>(data + 4), size - 4);

  CsvOptions o;
  o.whitespace = (flags & 1) != 0;
  o.header = (flags & 2) != 0;
  o.bad_numbers = (flags & 4) ? BadNumbers::missing : BadNumbers::error;
  o.skip_lines = (flags >> 3) & 3;
  if (flags & 0x20) o.categorical.emplace_back(0);
  if (flags & 0x40) o.categorical.emplace_back("1");
  if (flags & 0x80) o.missing.clear();
  static constexpr char kDelimiters[] = {',', ';', '\t', '|', ' '};
  o.delimiter = delim < 0xF0 ? kDelimiters[delim % 5] : static_cast<char>(delim);
  CsvReport report;
  o.report = &report;

  Table t;
  try {
    t = parse_csv(text, "fuzz.csv", o);
  } catch (const ctnn::Error& e) {
    ctnn_fuzz::expected(e);
    return 0;
  }
  check_table(t, "parse_csv gave an inconsistent table");
  if (t.rows() == 0 || t.cols() == 0 || report.rows != t.rows()) bug("parse_csv miscounts rows");
  for (std::size_t r = 1; r < t.lines.size(); ++r)
    if (t.lines[r] <= t.lines[r - 1]) bug("row line numbers do not increase");
  for (const Column& c : t.columns)
    for (std::size_t r = 0; r < c.values.size(); ++r) (void)c.text(r);

  try_dataset(t, spec);

  // Cleaning: on all columns (clean bit 7 clear) or on column 0 alone.
  std::vector<ColumnRef> cols;
  if (clean & 0x80) cols.emplace_back(0);
  if (clean & 1) clean_step(t, spec, [&](Table& c) { return drop_missing(c, cols); });
  if (clean & 2) {
    static const Impute kHow[] = {Impute::mean(), Impute::median(), Impute::most_frequent(),
                                  Impute::constant(0.0), Impute::constant("other")};
    clean_step(t, spec, [&](Table& c) { return impute(c, kHow[(clean >> 4) % 5], cols); });
  }
  if (clean & 4) clean_step(t, spec, [&](Table& c) { return drop_duplicates(c, cols); });
  if (clean & 8) {
    const double z = (clean & 0x40) ? 0.5 : 3.0;
    clean_step(t, spec, [&](Table& c) { return drop_outliers(c, ZScore{z}, cols); });
    clean_step(t, spec, [&](Table& c) { return clip_outliers(c, Range{-1.0, 1.0}, cols); });
  }
  return 0;
}
