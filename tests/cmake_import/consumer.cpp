// consumer.cpp: a program outside the ctnn tree that includes ctnn the way a user would.
#include <ctnn/ctnn.hpp>

#include "tiny_model.hpp"

int main() { return consumer_check::run_tiny_model(); }
