// The recurrent model of the streaming deployment tests (streaming_tool.cpp): every recurrent
// layer, stacked, reading Fashion-MNIST images as sequences of 28 rows of 28 pixels.
#pragma once
#include <ctnn/ctnn.hpp>

using RnnModel = ctnn::Sequential<ctnn::Input<28, 28>, ctnn::SimpleRNN<16, true>, ctnn::GRU<16, true>,
                                  ctnn::LSTM<24>, ctnn::Dense<10>, ctnn::Softmax>;
