// Makes `require('vscode')` and `require('vscode-languageclient/node')` load the stubs in this folder, so the
// compiled extension can be activated under plain node. Require this before anything under out/.
'use strict';
const Module = require('module');
const path = require('path');

const stubs = {
  vscode: path.join(__dirname, 'vscode.js'),
  'vscode-languageclient/node': path.join(__dirname, 'languageclient.js'),
};

const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return Object.prototype.hasOwnProperty.call(stubs, request) ? stubs[request] : resolveFilename.call(this, request, ...rest);
};
