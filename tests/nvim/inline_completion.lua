-- Inline completion through Neovim 0.7.2's own LSP client.
--
-- Run headless:
--   SPARK_LS=build/app/spark-ls nvim --headless -u NONE -i NONE \
--     -c 'luafile tests/nvim/inline_completion.lua' -c 'cquit 3'
--
-- The script starts `spark-ls serve` with vim.lsp.start_client, attaches it to a Python buffer, edits the buffer so
-- that every change reaches the server through Neovim's incremental didChange tracking (with non-BMP characters,
-- so the UTF-16 offsets Neovim 0.7.2 computes are exercised), then asks for an inline completion at an empty
-- indented line of a function body. It checks the answer against docs/LSP.md: at least one item whose insertText
-- is non-blank, whose range is empty at the cursor, and whose command accepts it. It also compares the server's
-- copy of the document with the buffer, runs the accept command, reads spark/stats and shuts the server down.
--
-- Exit status: 0 when every check passes; 1 when a check fails or a wait times out (`cquit`). The trailing
-- `-c 'cquit 3'` only runs when the script returned without quitting, which is a bug in this script.

-- Neovim 0.7.2 offers no positionEncodings, so the server must fall back to UTF-16 (docs/LSP.md, Lifecycle).
local TIMEOUT_MS = tonumber(os.getenv('SPARK_NVIM_TIMEOUT_MS') or '') or 30000

local log_lines = {}  -- window/logMessage and showMessage text, printed when a check fails

local function say(msg)
  io.stdout:write('[nvim] ', msg, '\n')
  io.stdout:flush()
end

-- Every failure ends here: print the reason and the server's recent log, then exit non-zero at once.
local function fail(msg)
  io.stderr:write('[nvim] FAIL: ', msg, '\n')
  local first = math.max(1, #log_lines - 20)
  for i = first, #log_lines do
    io.stderr:write('[nvim]   server log: ', log_lines[i], '\n')
  end
  io.stderr:flush()
  vim.cmd('cquit 1')
end

local function check(cond, msg)
  if not cond then fail(msg) end
  return cond
end

-- Waits until `cond()` holds; a timeout is a failure named by `what`.
local function wait_for(what, cond, timeout_ms)
  local ok = vim.wait(timeout_ms or TIMEOUT_MS, cond, 10)
  check(ok, 'timed out waiting for ' .. what)
end

-- client.request with a synchronous wait; returns err, result.
local function request(client, method, params, bufnr)
  local done, err, result = false, nil, nil
  local ok = client.request(method, params, function(e, r)
    done, err, result = true, e, r
  end, bufnr)
  check(ok, method .. ': the client refused to send the request (client stopped?)')
  wait_for('the answer to ' .. method, function() return done end)
  return err, result
end

local function is_null(v) return v == nil or v == vim.NIL end

local function main()
  local server = os.getenv('SPARK_LS')
  check(server and server ~= '', 'SPARK_LS must name the spark-ls binary')
  check(vim.fn.executable(server) == 1, 'SPARK_LS is not executable: ' .. tostring(server))

  -- A small Python module on disk, opened like any file.
  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, 'p')
  local path = dir .. '/geometry.py'
  vim.fn.writefile({
    '"""Geometry helpers (π ≈ 3.14159)."""',
    'import math',
    '',
    '',
    'def circle_area(radius):',
    '    """Return the area of a circle with the given radius."""',
    '    return math.pi * radius ** 2',
    '',
    '',
    'def main():',
    '    print(circle_area(2.0))',
  }, path)
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  local bufnr = vim.api.nvim_get_current_buf()
  vim.bo[bufnr].filetype = 'python'  -- -u NONE: no filetype detection; didOpen's languageId comes from here

  local init_result, exit_code = nil, nil
  local client_id = vim.lsp.start_client({
    name = 'spark-ls',
    cmd = { server, 'serve' },
    root_dir = dir,
    on_init = function(_, result) init_result = result end,
    on_exit = function(code) exit_code = code end,
    handlers = {
      ['window/logMessage'] = function(_, params)
        table.insert(log_lines, tostring(params and params.message))
      end,
      ['window/showMessage'] = function(_, params)
        table.insert(log_lines, 'showMessage: ' .. tostring(params and params.message))
      end,
    },
  })
  check(client_id, 'vim.lsp.start_client returned nil')
  check(vim.lsp.buf_attach_client(bufnr, client_id), 'vim.lsp.buf_attach_client failed')
  wait_for('initialize', function() return init_result ~= nil or exit_code ~= nil end)
  check(init_result ~= nil, 'the server exited during initialize with code ' .. tostring(exit_code))
  local client = vim.lsp.get_client_by_id(client_id)
  check(client, 'no client object after initialize')

  local caps = init_result.capabilities or {}
  check(caps.inlineCompletionProvider ~= nil, 'initialize: no inlineCompletionProvider')
  check(caps.positionEncoding == 'utf-16',
    'initialize: positionEncoding is ' .. tostring(caps.positionEncoding) .. ', expected utf-16 (nothing offered)')
  check(client.offset_encoding == 'utf-16', 'client offset_encoding is ' .. tostring(client.offset_encoding))
  say('initialized: ' .. vim.inspect(init_result.serverInfo, { newline = ' ', indent = '' }))

  -- Edits after attach: each goes out as an incremental didChange computed by Neovim.
  -- 1. A non-BMP character (a UTF-16 surrogate pair) in the first line, then text inserted after it on the same
  --    line: the second change's range starts past the pair, so a wrong encoding desynchronises the document.
  local first = vim.api.nvim_buf_get_lines(bufnr, 0, 1, true)[1]
  local paren = first:find(')', 1, true)
  vim.api.nvim_buf_set_text(bufnr, 0, paren - 1, 0, paren - 1, { ', 📐' })
  first = vim.api.nvim_buf_get_lines(bufnr, 0, 1, true)[1]
  paren = first:find(')', 1, true)
  vim.api.nvim_buf_set_text(bufnr, 0, paren - 1, 0, paren - 1, { ' units' })
  -- 2. A new function above main(), its body an empty indented line where the cursor goes.
  local main_row = nil
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, true)) do
    if line == 'def main():' then main_row = i - 1 end
  end
  check(main_row, 'def main(): not found in the buffer')
  vim.api.nvim_buf_set_lines(bufnr, main_row, main_row, true, {
    'def rectangle_area(width, height):',
    '    """Return the area of a rectangle of the given width and height."""',
    '    ',
    '',
    '',
  })
  local cursor_row = main_row + 2  -- 0-based row of the empty indented line
  -- Where an insert-mode cursor sits after typing the indent: past the line's last character, which normal mode
  -- only allows with virtualedit=onemore.
  vim.o.virtualedit = 'onemore'
  vim.api.nvim_win_set_cursor(0, { cursor_row + 1, 4 })

  -- 0.7.2 has no inline completion of its own: build the params like its other position requests do.
  local params = vim.lsp.util.make_position_params()
  params.context = { triggerKind = 1 }
  check(params.position.line == cursor_row and params.position.character == 4,
    'make_position_params gave ' .. vim.inspect(params.position))
  -- client.request flushes the pending didChange notifications before sending the request.
  local err, result = request(client, 'textDocument/inlineCompletion', params, bufnr)
  check(is_null(err), 'textDocument/inlineCompletion failed: ' .. vim.inspect(err))
  check(type(result) == 'table' and type(result.items) == 'table',
    'textDocument/inlineCompletion: expected {items = [...]}, got ' .. vim.inspect(result))
  check(#result.items >= 1, 'textDocument/inlineCompletion: no items at the empty line of a function body')
  local item = result.items[1]
  check(type(item.insertText) == 'string' and item.insertText:find('%S') ~= nil,
    'item.insertText is not a non-blank string: ' .. vim.inspect(item.insertText))
  local r = item.range
  check(type(r) == 'table', 'item has no range')
  -- A fresh suggestion: the range is empty at the request's position.
  for _, end_name in ipairs({ 'start', 'end' }) do
    check(r[end_name].line == params.position.line and r[end_name].character == params.position.character,
      'item.range.' .. end_name .. ' is ' .. vim.inspect(r[end_name]) .. ', expected the cursor ' ..
      vim.inspect(params.position))
  end
  check(type(item.command) == 'table' and item.command.command == 'spark-ls.accept',
    'item.command is not spark-ls.accept: ' .. vim.inspect(item.command))
  say('suggestion at ' .. params.position.line .. ':' .. params.position.character .. ': ' ..
    vim.inspect(item.insertText))

  -- The server's copy of the document must equal the buffer, text and version.
  local derr, doc = request(client, 'spark/document', { textDocument = params.textDocument }, bufnr)
  check(is_null(derr), 'spark/document failed: ' .. vim.inspect(derr))
  local text = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, true), '\n') .. '\n'
  check(doc.text == text, 'the server\'s document differs from the buffer:\n--- server\n' .. tostring(doc.text) ..
    '\n--- buffer\n' .. text)
  check(doc.version == vim.lsp.util.buf_versions[bufnr],
    'spark/document version ' .. tostring(doc.version) .. ', buffer version ' ..
    tostring(vim.lsp.util.buf_versions[bufnr]))
  check(doc.languageId == 'python', 'spark/document languageId ' .. tostring(doc.languageId))

  -- Accepting goes through workspace/executeCommand with the item's own command, as Neovim would run it.
  local aerr, aresult = request(client, 'workspace/executeCommand',
    { command = item.command.command, arguments = item.command.arguments }, bufnr)
  check(is_null(aerr), 'workspace/executeCommand spark-ls.accept failed: ' .. vim.inspect(aerr))
  check(is_null(aresult), 'workspace/executeCommand spark-ls.accept answered ' .. vim.inspect(aresult))
  local serr, stats = request(client, 'spark/stats', vim.empty_dict(), bufnr)
  check(is_null(serr), 'spark/stats failed: ' .. vim.inspect(serr))
  check(type(stats) == 'table' and (stats.requests or 0) >= 1 and (stats.accepted or 0) >= 1,
    'spark/stats does not count the request and the acceptance: ' .. vim.inspect(stats))

  -- shutdown + exit: the stdio server ends with status 0.
  client.stop()
  wait_for('the server to exit after shutdown', function() return exit_code ~= nil end)
  check(exit_code == 0, 'the server exited with code ' .. tostring(exit_code) .. ' after shutdown')
  vim.fn.delete(dir, 'rf')
  say('PASS')
end

local ok, msg = xpcall(main, debug.traceback)
if not ok then fail('error: ' .. tostring(msg)) end
vim.cmd('qall!')
