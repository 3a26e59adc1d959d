-- The Neovim plugin (editors/nvim) on Neovim 0.7.2, driven by real keys.
--
-- Run headless (no trailing command: the script quits by itself, and a watchdog ends a hung run):
--   SPARK_LS=build/app/spark-ls nvim --headless -u NONE -i NONE -c 'luafile tests/nvim/plugin.lua'
--
-- Keys go in with nvim_input, exactly as typed keys, so insert mode, TextChangedI, CursorMovedI, InsertLeave and
-- the expr mappings all run as they do for a user. The checks run in a coroutine that gives control back to the
-- main loop while it waits for a condition (polled every 10 ms, with a timeout), because typed keys are only
-- processed by the main loop.
--
-- 1. Typing in a Python buffer shows ghost text; <C-]> and a cursor move hide it, typing the same text again
--    shows it again. It equals the server's suggestion for that buffer state (checked against a direct
--    textDocument/inlineCompletion request). <M-Right> inserts its first word and keeps the rest shown; <Tab>
--    inserts the rest: the buffer is the old text plus the suggestion, the cursor is at its end, and spark/stats
--    counts the acceptance.
-- 2. With a server that generates slowly (`serve --test-double slow-engine`), a request is surely pending when the
--    cursor moves: the plugin sends $/cancelRequest for it (spark/stats counts it cancelled) and shows nothing.
--    The request's position is in UTF-16 units (a non-BMP character precedes the cursor), triggerKind 2.
-- 3. <Tab> with nothing shown inserts a tab character ('noexpandtab').
-- 4. An item re-served with a range over typed text, two lines long (given to the plugin directly, as the test
--    model's suggestions are one line): only the untyped part is shown, and <Tab> inserts both lines.
--
-- Exit status: 0 when every check passes; 1 when a check fails or a wait times out; 2 from the watchdog.

local TIMEOUT_MS = tonumber(os.getenv('SPARK_NVIM_TIMEOUT_MS') or '') or 20000
local WATCHDOG_MS = 60000

local api = vim.api

local function say(msg)
  io.stdout:write('[nvim] ', msg, '\n')
  io.stdout:flush()
end

local function fail(msg)
  io.stderr:write('[nvim] FAIL: ', msg, '\n')
  io.stderr:flush()
  vim.cmd('cquit 1')
end

local function check(cond, msg)
  if not cond then fail(msg) end
  return cond
end

-- The whole run must end before the watchdog fires, whatever happens.
local watchdog = vim.loop.new_timer()
watchdog:start(WATCHDOG_MS, 0, vim.schedule_wrap(function()
  io.stderr:write('[nvim] FAIL: watchdog: the test did not finish in ', WATCHDOG_MS, ' ms\n')
  vim.cmd('cquit 2')
end))

-- Suspends the test coroutine until `cond()` holds (checked from the main loop every 10 ms); a timeout fails.
local co
local function await(what, cond, timeout_ms)
  local deadline = vim.loop.now() + (timeout_ms or TIMEOUT_MS)
  local timer = vim.loop.new_timer()
  timer:start(10, 10, vim.schedule_wrap(function()
    if not timer:is_active() then return end
    local ok, res = pcall(cond)
    if ok and res then
      timer:stop(); timer:close()
      local rok, rerr = coroutine.resume(co)
      if not rok then fail('error: ' .. debug.traceback(co, tostring(rerr))) end
    elseif not ok or vim.loop.now() > deadline then
      timer:stop(); timer:close()
      fail(not ok and ('error while waiting for ' .. what .. ': ' .. tostring(res))
        or ('timed out waiting for ' .. what))
    end
  end))
  coroutine.yield()
end

-- client.request, waiting for the answer; returns err, result.
local function request(client, method, params, bufnr)
  local done, err, result = false, nil, nil
  local ok = client.request(method, params, function(e, r) done, err, result = true, e, r end, bufnr)
  check(ok, method .. ': the client refused to send the request')
  await('the answer to ' .. method, function() return done end)
  return err, result
end

local function is_null(v) return v == nil or v == vim.NIL end

-- Polls spark/stats (one request at a time) until `pred(stats)` holds; returns those stats.
local function await_stats(what, client, bufnr, pred)
  local stats, asking = nil, false
  await(what, function()
    if stats and pred(stats) then return true end
    if not asking then
      asking = true
      client.request('spark/stats', vim.empty_dict(), function(e, r)
        asking = false
        if not e then stats = r end
      end, bufnr)
    end
    return false
  end)
  return stats
end

local function lines_of(bufnr) return api.nvim_buf_get_lines(bufnr, 0, -1, true) end

-- The plugin's ghost text in `bufnr`: the first line's text and the further lines, or nil when nothing is shown.
local function ghost(bufnr, ns)
  local marks = api.nvim_buf_get_extmarks(bufnr, ns, 0, -1, { details = true })
  if #marks == 0 then return nil end
  check(#marks == 1, 'expected one ghost-text extmark, found ' .. #marks)
  local m = marks[1]
  local d = m[4]
  local parts = {}
  for _, chunk in ipairs(d.virt_text or {}) do table.insert(parts, chunk[1]) end
  local text = table.concat(parts)
  for _, vl in ipairs(d.virt_lines or {}) do
    local lp = {}
    for _, chunk in ipairs(vl) do table.insert(lp, chunk[1]) end
    text = text .. '\n' .. table.concat(lp)
  end
  return { row = m[2], col = m[3], text = text, hl = d.virt_text and d.virt_text[1][2], pos = d.virt_text_pos }
end

-- Python source with an unfinished function body.
local SOURCE = {
  'import math',
  '',
  '',
  'def circle_area(radius):',
  '    """Return the area of a circle with the given radius."""',
  '    return math.pi * radius ** 2',
  '',
  '',
  'def rectangle_area(width, height):',
  '    """Return the area of a rectangle of the given width and height."""',
  '    ',
  '',
  '',
  'def main():',
  '    print(circle_area(2.0))',
}
local BODY_ROW = 10  -- 0-based row of the empty indented line

-- Opens SOURCE as a Python file with the cursor at the end of the body line (normal mode).
local function open_python(dir, name)
  local path = dir .. '/' .. name
  vim.fn.writefile(SOURCE, path)
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  local bufnr = api.nvim_get_current_buf()
  vim.bo[bufnr].filetype = 'python'  -- -u NONE: no detection; FileType attaches the plugin
  api.nvim_win_set_cursor(0, { BODY_ROW + 1, 0 })
  return bufnr
end

local function main()
  local server = os.getenv('SPARK_LS')
  check(server and server ~= '', 'SPARK_LS must name the spark-ls binary')
  check(vim.fn.executable(server) == 1, 'SPARK_LS is not executable: ' .. tostring(server))

  -- The plugin from this checkout.
  local root = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h:h')
  vim.opt.runtimepath:prepend(root .. '/editors/nvim')
  vim.o.expandtab = false
  local spark = require('spark_ls')
  spark.setup({ cmd = server, filetypes = { 'python' } })
  spark.setup({ cmd = server, filetypes = { 'python' } })  -- idempotent: still one server

  local dir = vim.fn.tempname()
  vim.fn.mkdir(dir, 'p')
  local bufnr = open_python(dir, 'shapes.py')
  local ns = spark.status().namespace
  await('the server to initialise', function() return spark.status().ready end)
  local client_id = spark.status().client_id
  check(#vim.lsp.get_active_clients() == 1, 'setup twice started ' .. #vim.lsp.get_active_clients() .. ' clients')
  check(vim.lsp.buf_is_attached(bufnr, client_id), 'the Python buffer is not attached')
  local client = vim.lsp.get_client_by_id(client_id)

  ------------------------------------------------------------------------------------------------------------------
  -- 1. Ghost text while typing, and <Tab> accepting it.
  api.nvim_input('Are')
  await('insert mode and the typed text', function()
    return api.nvim_get_mode().mode == 'i' and lines_of(bufnr)[BODY_ROW + 1] == '    re'
  end)
  await('ghost text after typing', function() return ghost(bufnr, ns) ~= nil end)
  local first_shown = ghost(bufnr, ns).text
  -- The dismiss key hides it without inserting anything; typing brings a suggestion back.
  api.nvim_input('<C-]>')
  await('the ghost text to go on <C-]>', function() return ghost(bufnr, ns) == nil end)
  check(lines_of(bufnr)[BODY_ROW + 1] == '    re', '<C-]> changed the line: ' .. lines_of(bufnr)[BODY_ROW + 1])
  api.nvim_input('x<BS>')
  await('ghost text after typing again', function() return ghost(bufnr, ns) ~= nil end)
  -- Moving the cursor away dismisses it; coming back and retyping the same text brings it back.
  api.nvim_input('<Left>')
  await('the ghost text to go on a cursor move', function() return ghost(bufnr, ns) == nil end)
  check(spark.status().suggestion == nil, 'the plugin still holds a suggestion after the cursor moved')
  api.nvim_input('<Right>x<BS>')
  await('the line to be "    re" again', function()
    return lines_of(bufnr)[BODY_ROW + 1] == '    re' and api.nvim_win_get_cursor(0)[2] == 6
  end)
  await('ghost text after retyping', function() return ghost(bufnr, ns) ~= nil end)
  local shown = ghost(bufnr, ns)
  check(shown.text == first_shown, 'the same buffer state gave ' .. vim.inspect(shown.text) .. ', before ' ..
    vim.inspect(first_shown))
  local before = lines_of(bufnr)
  local row, col = api.nvim_win_get_cursor(0)[1] - 1, api.nvim_win_get_cursor(0)[2]
  check(row == BODY_ROW and col == 6, 'cursor at ' .. row .. ':' .. col .. ', expected ' .. BODY_ROW .. ':6')
  check(shown.row == row and shown.col == col, 'the ghost text is not at the cursor')
  check(shown.hl == 'SparkLsSuggestion', 'ghost text highlight is ' .. tostring(shown.hl))
  check(shown.pos == 'overlay', 'at the end of a line the ghost text should overlay, got ' .. tostring(shown.pos))
  check(shown.text:find('%S') ~= nil, 'the ghost text is blank: ' .. vim.inspect(shown.text))
  say('ghost text: ' .. vim.inspect(shown.text))

  -- The server's own answer for this buffer state: what remains after the cursor must be what is shown.
  -- (The line is ASCII, so the byte column is also the UTF-16 character.)
  local uri = vim.uri_from_bufnr(bufnr)
  local err, result = request(client, 'textDocument/inlineCompletion',
    { textDocument = { uri = uri }, position = { line = row, character = col }, context = { triggerKind = 2 } },
    bufnr)
  check(is_null(err), 'direct inlineCompletion failed: ' .. vim.inspect(err))
  local item = result and result.items and result.items[1]
  check(item, 'direct inlineCompletion has no item: ' .. vim.inspect(result))
  local typed = before[row + 1]:sub(item.range.start.character + 1, col)
  check(item.insertText:sub(1, #typed) == typed, 'insertText does not start with the typed part of its range')
  local expected = item.insertText:sub(#typed + 1)
  check(shown.text == expected, 'the ghost text ' .. vim.inspect(shown.text) .. ' differs from the server\'s ' ..
    vim.inspect(expected))

  -- <M-Right> accepts the first word; the rest stays shown after it.
  local word = expected:match('^[ \t]*[%w_]+') or expected:match('^[ \t]*[^%w_%s]+')
  if word and word ~= expected then
    api.nvim_input('<M-Right>')
    await('the first word to be inserted', function() return lines_of(bufnr)[row + 1] == before[row + 1] .. word end)
    check(api.nvim_win_get_cursor(0)[2] == col + #word, 'the cursor is not after the accepted word')
    local rest = ghost(bufnr, ns)
    check(rest and rest.text == expected:sub(#word + 1) and rest.col == col + #word,
      'after accepting a word the ghost text is ' .. vim.inspect(rest) .. ', expected ' ..
      vim.inspect(expected:sub(#word + 1)))
    say('accepted the word ' .. vim.inspect(word))
  end

  -- <Tab> accepts (the rest): the buffer is the old text with the suggestion inserted at the cursor.
  api.nvim_input('<Tab>')
  await('the suggestion to be inserted', function()
    return #table.concat(lines_of(bufnr), '\n') == #table.concat(before, '\n') + #expected
  end)
  local want = vim.deepcopy(before)
  local ins = vim.split(expected, '\n', true)
  local line = before[row + 1]
  local head, tail = line:sub(1, col), line:sub(col + 1)
  local new_lines = {}
  for i, l in ipairs(ins) do new_lines[i] = l end
  new_lines[1] = head .. new_lines[1]
  local end_col = #new_lines[#new_lines]
  new_lines[#new_lines] = new_lines[#new_lines] .. tail
  table.remove(want, row + 1)
  for i = #new_lines, 1, -1 do table.insert(want, row + 1, new_lines[i]) end
  local got = lines_of(bufnr)
  check(vim.deep_equal(got, want), 'after <Tab>:\n--- buffer\n' .. table.concat(got, '\n') .. '\n--- expected\n' ..
    table.concat(want, '\n'))
  local cur = api.nvim_win_get_cursor(0)
  check(cur[1] - 1 == row + #ins - 1 and cur[2] == end_col,
    'cursor after accepting at ' .. vim.inspect(cur) .. ', expected the end of the suggestion')
  check(api.nvim_get_mode().mode == 'i', 'accepting left insert mode')
  local stats = await_stats('spark/stats to count the acceptance', client, bufnr,
    function(st) return (st.accepted or 0) >= 1 end)
  say('accepted; stats: requests=' .. stats.requests .. ' accepted=' .. stats.accepted .. ' shown=' ..
    tostring(stats.shown))
  api.nvim_input('<Esc>')
  await('normal mode', function() return api.nvim_get_mode().mode == 'n' end)
  check(ghost(bufnr, ns) == nil, 'ghost text left after InsertLeave')

  ------------------------------------------------------------------------------------------------------------------
  -- 2. Cancellation on a cursor move, against a slow server (a completion would take minutes).
  spark.stop()
  await('the first server to stop', function() return #vim.lsp.get_active_clients() == 0 end)
  spark.setup({
    cmd = server, args = { '--test-double', 'slow-engine' }, filetypes = { 'python' },
    settings = { maxTokens = 3000, timeBudgetMs = 600000 },
  })
  bufnr = open_python(dir, 'slow.py')
  await('the slow server to initialise', function() return spark.status().ready end)
  client = vim.lsp.get_client_by_id(spark.status().client_id)
  -- Record what the plugin sends through this client (the same table the plugin gets from get_client_by_id).
  local sent_params, cancelled_ids = {}, {}
  local orig_request, orig_cancel = client.request, client.cancel_request
  client.request = function(method, params, ...)
    if method == 'textDocument/inlineCompletion' then table.insert(sent_params, params) end
    return orig_request(method, params, ...)
  end
  client.cancel_request = function(id)
    table.insert(cancelled_ids, id)
    return orig_cancel(id)
  end

  -- A non-BMP character before the cursor: 4 bytes, 2 UTF-16 units.
  api.nvim_input('A📐re')
  await('a pending inlineCompletion request', function() return spark.status().pending ~= nil end)
  local pending_id = spark.status().pending
  check(ghost(bufnr, ns) == nil, 'ghost text from the slow server already')
  local p = sent_params[#sent_params]
  check(p and p.position.line == BODY_ROW and p.position.character == 8 and p.context.triggerKind == 2,
    'inlineCompletion params ' .. vim.inspect(p) .. ', expected line ' .. BODY_ROW .. ', UTF-16 character 8, ' ..
    'triggerKind 2')
  api.nvim_input('<Left>')
  await('the plugin to drop the request', function() return spark.status().pending == nil end)
  check(vim.tbl_contains(cancelled_ids, pending_id), 'no $/cancelRequest for request ' .. tostring(pending_id) ..
    ' (cancelled: ' .. vim.inspect(cancelled_ids) .. ')')
  stats = await_stats('spark/stats to count the cancellation', client, bufnr,
    function(st) return (st.cancelled or 0) >= 1 end)
  check(ghost(bufnr, ns) == nil, 'ghost text shown after the cursor moved')
  say('cancelled on cursor move; stats: requests=' .. stats.requests .. ' cancelled=' .. stats.cancelled)

  ------------------------------------------------------------------------------------------------------------------
  -- 3. <Tab> with nothing shown falls through: a literal tab at the cursor ("    📐r|e" -> "    📐r\te").
  api.nvim_input('<Tab>')
  await('the tab character', function() return lines_of(bufnr)[BODY_ROW + 1] ~= '    📐re' end)
  check(lines_of(bufnr)[BODY_ROW + 1] == '    📐r\te',
    'after <Tab> without a suggestion the line is ' .. vim.inspect(lines_of(bufnr)[BODY_ROW + 1]))

  ------------------------------------------------------------------------------------------------------------------
  -- 4. A re-served, multi-line item whose range covers typed text ("r\te" typed after "📐", the cursor at the end;
  --    the range in UTF-16 units): only the
  --    part after the cursor is shown, its second line as a virtual line, and <Tab> inserts both lines.
  api.nvim_input('<End>')
  await('the cursor at the end of the line, nothing pending', function()
    return api.nvim_win_get_cursor(0)[2] == 11 and spark.status().pending == nil
  end)
  local fake = {
    insertText = 'r\te = width * height\n    return e',
    range = { start = { line = BODY_ROW, character = 6 }, ['end'] = { line = BODY_ROW, character = 9 } },
    command = { title = 'Accept completion', command = 'spark-ls.accept', arguments = { 'cmpl-test' } },
  }
  check(spark.show_item(fake), 'show_item refused an item whose range covers the typed text')
  shown = ghost(bufnr, ns)
  check(shown and shown.text == ' = width * height\n    return e' and shown.pos == 'overlay',
    'a re-served two-line item is shown as ' .. vim.inspect(shown))
  api.nvim_input('<Tab>')
  await('the two lines to be inserted', function() return lines_of(bufnr)[BODY_ROW + 2] == '    return e' end)
  check(lines_of(bufnr)[BODY_ROW + 1] == '    📐r\te = width * height',
    'after accepting the first line is ' .. vim.inspect(lines_of(bufnr)[BODY_ROW + 1]))
  check(lines_of(bufnr)[BODY_ROW + 3] == '', 'the line below the insertion changed')
  cur = api.nvim_win_get_cursor(0)
  check(cur[1] == BODY_ROW + 2 and cur[2] == 12, 'cursor after a two-line accept at ' .. vim.inspect(cur))
  check(ghost(bufnr, ns) == nil, 'ghost text left after accepting')

  api.nvim_input('<Esc>')
  await('normal mode', function() return api.nvim_get_mode().mode == 'n' end)
  await('InsertLeave to cancel the new request', function() return spark.status().pending == nil end)

  spark.stop()
  vim.fn.delete(dir, 'rf')
  say('PASS')
  vim.cmd('qall!')
end

co = coroutine.create(main)
local ok, err = coroutine.resume(co)
if not ok then fail('error: ' .. debug.traceback(co, tostring(err))) end
