// Score one jet with an exported foundation model through the ONNX Runtime C++ API.
//
//   score_jet model.onnx jet.txt
//
// Reads the jet file format of deploy/python/score_jet.py ("N F J", then N lines of F features
// followed by px py pz E, then one line of J jet inputs when J > 0), builds a batch of one jet
// with every slot real, feeds the inputs the graph has (particles, vectors, mask as bool, jet)
// and prints every output as "name [shape]: values", one line each, like the Python consumer.

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Jet {
  int64_t count = 0;
  int64_t width = 0;
  int64_t jet_width = 0;
  std::vector<float> particles;  // [N, F]
  std::vector<float> vectors;    // [N, 4]
  std::vector<float> jet;        // [J]
};

// The non-comment, non-empty lines of a text file.
std::vector<std::string> data_lines(const std::string& path) {
  std::ifstream stream(path);
  if (!stream) throw std::runtime_error(path + ": cannot open");
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(stream, line)) {
    line = line.substr(0, line.find('#'));
    if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  }
  return lines;
}

std::vector<float> numbers(const std::string& line) {
  std::istringstream stream(line);
  std::vector<float> values;
  float value;
  while (stream >> value) values.push_back(value);
  return values;
}

Jet read_jet(const std::string& path) {
  const std::vector<std::string> lines = data_lines(path);
  Jet jet;
  if (lines.empty()) throw std::runtime_error(path + ": empty file");
  std::istringstream header(lines[0]);
  if (!(header >> jet.count >> jet.width >> jet.jet_width))
    throw std::runtime_error(path + ": the first line must be 'N F J'");
  const size_t expected = 1 + jet.count + (jet.jet_width > 0 ? 1 : 0);
  if (lines.size() != expected)
    throw std::runtime_error(path + ": expected " + std::to_string(expected) + " data lines");
  for (int64_t i = 0; i < jet.count; ++i) {
    const std::vector<float> row = numbers(lines[1 + i]);
    if (static_cast<int64_t>(row.size()) != jet.width + 4)
      throw std::runtime_error(path + ": particle " + std::to_string(i) + ": expected " +
                               std::to_string(jet.width + 4) + " values");
    jet.particles.insert(jet.particles.end(), row.begin(), row.begin() + jet.width);
    jet.vectors.insert(jet.vectors.end(), row.begin() + jet.width, row.end());
  }
  if (jet.jet_width > 0) {
    jet.jet = numbers(lines.back());
    if (static_cast<int64_t>(jet.jet.size()) != jet.jet_width)
      throw std::runtime_error(path + ": expected " + std::to_string(jet.jet_width) + " jet inputs");
  }
  return jet;
}

// A tensor over caller-owned memory (a zero-size tensor still gets a valid pointer).
Ort::Value tensor(const Ort::MemoryInfo& memory, void* data, size_t bytes,
                  const std::vector<int64_t>& shape, ONNXTensorElementDataType type) {
  return Ort::Value::CreateTensor(memory, data, bytes, shape.data(), shape.size(), type);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " model.onnx jet.txt\n";
    return 2;
  }
  try {
    Jet jet = read_jet(argv[2]);
    Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "score_jet");
    Ort::SessionOptions options;
    options.SetIntraOpNumThreads(1);
    options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    Ort::Session session(env, argv[1], options);
    Ort::AllocatorWithDefaultOptions allocator;

    Ort::ModelMetadata metadata = session.GetModelMetadata();
    Ort::AllocatedStringPtr version =
        metadata.LookupCustomMetadataMapAllocated("foundation.library_version", allocator);
    std::cerr << "model: " << argv[1] << " (foundation " << (version ? version.get() : "?")
              << ")\n";

    // Padded buffers of at least one element, so that N = 0 still has valid pointers.
    const int64_t n = jet.count;
    jet.particles.resize(std::max<size_t>(jet.particles.size(), 1));
    jet.vectors.resize(std::max<size_t>(jet.vectors.size(), 1));
    jet.jet.resize(std::max<size_t>(jet.jet.size(), 1));
    std::vector<uint8_t> mask(std::max<int64_t>(n, 1), 1);  // bool tensor: one byte per element

    Ort::MemoryInfo memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    std::vector<std::string> input_names;
    std::vector<Ort::Value> inputs;
    for (size_t i = 0; i < session.GetInputCount(); ++i) {
      const std::string name = session.GetInputNameAllocated(i, allocator).get();
      const auto f32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
      if (name == "particles") {
        inputs.push_back(tensor(memory, jet.particles.data(), sizeof(float) * n * jet.width,
                                {1, n, jet.width}, f32));
      } else if (name == "vectors") {
        inputs.push_back(tensor(memory, jet.vectors.data(), sizeof(float) * n * 4, {1, n, 4}, f32));
      } else if (name == "mask") {
        inputs.push_back(
            tensor(memory, mask.data(), n, {1, n}, ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL));
      } else if (name == "jet") {
        inputs.push_back(tensor(memory, jet.jet.data(), sizeof(float) * jet.jet_width,
                                {1, jet.jet_width}, f32));
      } else {
        throw std::runtime_error("the graph takes input '" + name +
                                 "': an embeddings-only export cannot score raw jets");
      }
      input_names.push_back(name);
    }
    std::vector<std::string> output_names;
    for (size_t i = 0; i < session.GetOutputCount(); ++i)
      output_names.push_back(session.GetOutputNameAllocated(i, allocator).get());

    std::vector<const char*> input_ptrs, output_ptrs;
    for (const auto& name : input_names) input_ptrs.push_back(name.c_str());
    for (const auto& name : output_names) output_ptrs.push_back(name.c_str());
    std::vector<Ort::Value> outputs =
        session.Run(Ort::RunOptions{nullptr}, input_ptrs.data(), inputs.data(), inputs.size(),
                    output_ptrs.data(), output_ptrs.size());

    std::cout.precision(9);
    for (size_t i = 0; i < outputs.size(); ++i) {
      Ort::TensorTypeAndShapeInfo info = outputs[i].GetTensorTypeAndShapeInfo();
      if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
        throw std::runtime_error("output '" + output_names[i] + "' is not float32");
      std::cout << output_names[i] << " [";
      const std::vector<int64_t> shape = info.GetShape();
      for (size_t d = 0; d < shape.size(); ++d) std::cout << (d ? ", " : "") << shape[d];
      std::cout << "]:";
      const float* values = outputs[i].GetTensorData<float>();
      for (size_t k = 0; k < info.GetElementCount(); ++k) std::cout << ' ' << values[k];
      std::cout << '\n';
    }
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << '\n';
    return 1;
  }
  return 0;
}
