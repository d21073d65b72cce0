// Loaded with `node --require` before Backpack 0.5.5, so that the node runs unchanged on
// current Node.js. It mends the two things that broke since 2014 without editing any of
// the node's files:
//
// 1. lib/File.js takes its open flags from `process.binding('constants').O_RDWR` (and
//    O_CREAT, O_DIRECT). Current Node.js nests those under `.fs`, so the flags come out
//    undefined, the data file opens read-only, and every write fails (EBADF). We answer
//    that one binding with the file-system constants also at the top level.
// 2. lib/FileReader.js requires the native addon `aligned-buffer`, which no longer
//    compiles. Requests for it are sent to our Node-API build beside this file.
'use strict';

const fs = require('fs');
const path = require('path');
const Module = require('module');

const originalBinding = process.binding;
process.binding = function binding(name) {
  const exported = originalBinding.call(process, name);
  if (name !== 'constants' || exported.O_RDWR !== undefined) {
    return exported;
  }
  return Object.assign({}, exported, fs.constants);
};

const alignedBuffer = path.join(__dirname, 'aligned_buffer.node');
const originalResolve = Module._resolveFilename;
Module._resolveFilename = function resolveFilename(request, ...rest) {
  if (request === 'aligned-buffer') {
    return alignedBuffer;
  }
  return originalResolve.call(this, request, ...rest);
};
