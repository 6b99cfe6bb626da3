#pragma once
// compile(): from expressions, or from a C++ function of encrypted tensors, to a compiled
// model. The function is traced once with symbolic inputs; the passes do the rest.
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>
#include <fhetensor/compiler/model.hpp>
#include <fhetensor/compiler/passes.hpp>
#include <fhetensor/core/version.hpp>
#include <fhetensor/expr/encrypted.hpp>

FHETENSOR_BEGIN_NAMESPACE

/// The model whose outputs are the given expressions (of one graph).
template <EncryptedExpression... Outputs>
CompiledModel compile(const std::tuple<Outputs...>& outputs, CompileOptions options = {}) {
  static_assert(sizeof...(Outputs) >= 1, "a model needs at least one output");
  std::vector<NodeId> ids;
  const auto& graph = std::get<0>(outputs).graph();
  std::apply(
      [&](const auto&... y) {
        ((y.graph() == graph ? void() : throw CompileError("fhetensor: the outputs belong to different graphs")), ...);
        (ids.push_back(y.node()), ...);
      },
      outputs);
  return compiler::Compiler(*graph, std::move(ids), options).run();
}
template <EncryptedExpression Output>
CompiledModel compile(const Output& output, CompileOptions options = {}) {
  return compile(std::tuple{output}, options);
}

namespace detail {
template <class R>
auto as_tuple(R&& r) {
  if constexpr (EncryptedExpression<R>)
    return std::tuple{std::forward<R>(r)};
  else
    return std::forward<R>(r);
}
template <class T, class W>
Encrypted<T, W> declare(const InputDeclaration<T, W>& d, std::shared_ptr<Graph>& graph) {
  if (!graph) graph = std::make_shared<Graph>();
  return Encrypted<T, W>::input(graph, d.shape, d.range);
}
}  // namespace detail

/// Traces `model` on symbolic inputs and compiles what it returns (one expression or a
/// tuple of them). Inputs are declared with input<Tensor<int, N>, Width>(shape, range).
template <class F, class... T, class... W>
CompiledModel compile(F&& model, std::tuple<InputDeclaration<T, W>...> inputs, CompileOptions options = {}) {
  static_assert(sizeof...(T) >= 1, "a model needs at least one input");
  std::shared_ptr<Graph> graph;
  auto symbols = std::apply([&](const auto&... d) { return std::tuple{detail::declare(d, graph)...}; }, inputs);
  return compile(detail::as_tuple(std::apply(std::forward<F>(model), symbols)), options);
}
template <class F, class T, class W>
CompiledModel compile(F&& model, InputDeclaration<T, W> input, CompileOptions options = {}) {
  return compile(std::forward<F>(model), std::tuple{std::move(input)}, options);
}

FHETENSOR_END_NAMESPACE
