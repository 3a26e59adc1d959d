-- spark-ls for Neovim: inline (ghost-text) completions from `spark-ls serve`.
--
-- Works on Neovim 0.7.2 and newer. Neovim before 0.12 has no inline completion of its own, so this module does it
-- by hand: it requests `textDocument/inlineCompletion` after a short pause in typing, shows the first item as
-- extmark virtual text, and accepts it (whole, word by word or line by line) with insert-mode mappings that fall
-- through to their key's usual meaning while nothing is shown. See `:help spark-ls` and docs/LSP.md.

local api = vim.api
local uv = vim.loop

local M = {}

local NS = api.nvim_create_namespace('spark_ls')
local HL = 'SparkLsSuggestion'
local AUGROUP = 'SparkLs'

-- Defaults; setup(opts) merges the user's options over them.
local defaults = {
  cmd = 'spark-ls',          -- the server binary (string), or a full command line (list) used as is
  args = {},                 -- extra arguments after `serve` when cmd is a string
  settings = nil,            -- initializationOptions (docs/LSP.md, Settings)
  filetypes = { 'python', 'lua', 'c', 'cpp', 'rust', 'go', 'javascript', 'typescript', 'java', 'sh' },
  debounce_ms = 150,         -- pause in typing before a request is sent
  keymaps = {
    accept = '<Tab>',
    accept_word = '<M-Right>',
    accept_line = '<M-Down>',
    dismiss = '<C-]>',
  },
  native = true,             -- on Neovim >= 0.12 use vim.lsp.inline_completion instead of this module's ghost text
}

local config = vim.deepcopy(defaults)

-- Runtime state shared by the autocommands and mappings. There is one client and at most one pending request and
-- one shown suggestion at a time (only the current window's buffer can be in insert mode).
local state = {
  client_id = nil,   -- the spark-ls client, reused by every buffer
  ready = false,     -- initialize answered
  enabled = true,    -- :SparkLsToggle
  timer = nil,       -- debounce timer (vim.loop)
  pending = nil,     -- { id, bufnr, row, col }: the request in flight
  suggestion = nil,  -- { bufnr, row, col, end_col, text, item, extmark }: what is shown
  own_tick = nil,    -- changedtick right after a partial accept, whose TextChangedI must not dismiss
  is_setup = false,
}

------------------------------------------------------------------------------------------------------------------
-- Small helpers

-- True when the native inline completion of Neovim >= 0.12 should be used.
local function use_native()
  return config.native and vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
end

-- Calls a client method: plain functions up to Neovim 0.10, methods (client:request) from 0.11 on.
local HAS_CLIENT_METHODS = vim.fn.has('nvim-0.11') == 1
local function call(client, name, ...)
  if HAS_CLIENT_METHODS then return client[name](client, ...) end
  return client[name](...)
end

local function get_client()
  if not state.client_id then return nil end
  local client = vim.lsp.get_client_by_id(state.client_id)
  if not client or call(client, 'is_stopped') then return nil end
  return client
end

local function in_insert_mode()
  local mode = api.nvim_get_mode().mode
  return mode:sub(1, 1) == 'i'
end

-- The cursor as a 0-based row and a 0-based byte column.
local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

local function get_line(bufnr, row)
  return api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ''
end

-- Byte column -> UTF-16 code units, the only encoding Neovim 0.7.2 negotiates (it offers none, docs/LSP.md).
-- Neovim 0.11 changed vim.str_utfindex / vim.str_byteindex to take the encoding as their second argument.
local NEW_INDEX_API = vim.fn.has('nvim-0.11') == 1
local function utf16_col(line, col)
  col = math.min(col, #line)
  local ok, units
  if NEW_INDEX_API then
    ok, units = pcall(vim.str_utfindex, line, 'utf-16', col, false)
  else
    local _utf32
    ok, _utf32, units = pcall(vim.str_utfindex, line, col)  -- returns UTF-32 and UTF-16 counts
  end
  if ok and units then return units end
  return col
end

-- UTF-16 code units -> byte column; past the end of the line gives the line's length.
local function byte_col(line, utf16)
  local ok, col
  if NEW_INDEX_API then
    ok, col = pcall(vim.str_byteindex, line, 'utf-16', utf16, false)
  else
    ok, col = pcall(vim.str_byteindex, line, utf16, true)
  end
  if ok and col then return math.min(col, #line) end
  return #line
end

-- Virtual text does not expand tabs: show them as spaces the width of 'tabstop'.
local function expand_tabs(bufnr, s)
  return (s:gsub('\t', string.rep(' ', vim.bo[bufnr].tabstop)))
end

------------------------------------------------------------------------------------------------------------------
-- Requests

local function stop_timer()
  if state.timer then state.timer:stop() end
end

-- Cancels the request in flight, if any: Neovim sends $/cancelRequest and the server stops the engine.
local function cancel_pending()
  local pending = state.pending
  state.pending = nil
  if not pending then return end
  local client = get_client()
  if client then call(client, 'cancel_request', pending.id) end
end

-- Removes the ghost text.
local function clear_suggestion()
  local s = state.suggestion
  state.suggestion = nil
  if s and api.nvim_buf_is_valid(s.bufnr) then
    api.nvim_buf_clear_namespace(s.bufnr, NS, 0, -1)
  end
end

-- Stops everything in progress: the debounce timer, the pending request and the shown suggestion.
local function reset()
  stop_timer()
  cancel_pending()
  clear_suggestion()
end

-- Draws state.suggestion: its first line at the cursor, further lines as virtual lines below.
local function render()
  local s = state.suggestion
  api.nvim_buf_clear_namespace(s.bufnr, NS, 0, -1)
  local lines = vim.split(s.text, '\n', true)
  local line = get_line(s.bufnr, s.row)
  local pos
  if vim.fn.has('nvim-0.10') == 1 then
    pos = 'inline'                         -- pushes the rest of the line to the right
  elseif s.col >= #line then
    pos = 'overlay'                        -- at the end of the line: drawn exactly where it will go
  else
    pos = 'eol'                            -- mid-line on old versions: after the line's text
  end
  local opts = {
    virt_text = { { expand_tabs(s.bufnr, lines[1]), HL } },
    virt_text_pos = pos,
    hl_mode = 'combine',
  }
  if #lines > 1 then
    local virt_lines = {}
    for i = 2, #lines do
      table.insert(virt_lines, { { expand_tabs(s.bufnr, lines[i]), HL } })
    end
    opts.virt_lines = virt_lines
  end
  s.extmark = api.nvim_buf_set_extmark(s.bufnr, NS, s.row, s.col, opts)
end

-- Turns an InlineCompletionItem into what is shown at (row, col), or nil when it does not fit the buffer.
-- The server re-serves a suggestion the user has started typing with a range covering the typed part: only the
-- rest, after the cursor, is shown; the part of the range after the cursor (if any) is replaced on acceptance.
local function suggestion_from_item(bufnr, row, col, item)
  local text = item.insertText
  if type(text) == 'table' then text = text.value end  -- a snippet: shown and inserted verbatim
  if type(text) ~= 'string' then return nil end
  local line = get_line(bufnr, row)
  local start_col, end_col = col, col
  local r = item.range
  if type(r) == 'table' and r.start and r['end'] then
    if r.start.line ~= row or r['end'].line ~= row then return nil end
    start_col = byte_col(line, r.start.character)
    end_col = byte_col(line, r['end'].character)
  end
  if start_col > col or end_col < col then return nil end
  local typed = line:sub(start_col + 1, col)
  if text:sub(1, #typed) ~= typed then return nil end
  text = text:sub(#typed + 1)
  if text == '' then return nil end
  return { bufnr = bufnr, row = row, col = col, end_col = end_col, text = text, item = item }
end

-- Sends textDocument/inlineCompletion for the cursor of the current window, replacing any older request.
function M.trigger()
  local client = get_client()
  local bufnr = api.nvim_get_current_buf()
  if not client or not state.ready or not state.enabled or not in_insert_mode() then return end
  if not vim.lsp.buf_is_attached(bufnr, state.client_id) then return end
  cancel_pending()
  clear_suggestion()
  local row, col = cursor()
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    position = { line = row, character = utf16_col(get_line(bufnr, row), col) },
    context = { triggerKind = 2 },  -- Automatic: one item is enough
  }
  local id
  local function on_result(err, result)
    -- Only the newest request counts; a cancelled one comes back with -32800 and is dropped here.
    if not state.pending or state.pending.id ~= id then return end
    state.pending = nil
    if err or type(result) ~= 'table' then return end
    -- The answer is stale when the user typed, moved or left insert mode meanwhile.
    if api.nvim_get_current_buf() ~= bufnr or api.nvim_buf_get_changedtick(bufnr) ~= tick or not in_insert_mode() then
      return
    end
    local crow, ccol = cursor()
    if crow ~= row or ccol ~= col then return end
    local items = result.items or result  -- { items = [...] } or a bare list
    if type(items) ~= 'table' or type(items[1]) ~= 'table' then return end
    local s = suggestion_from_item(bufnr, row, col, items[1])
    if not s then return end
    state.suggestion = s
    render()
    call(client, 'notify', 'textDocument/didShowCompletion', { item = s.item })
  end
  local ok
  ok, id = call(client, 'request', 'textDocument/inlineCompletion', params, on_result, bufnr)
  if ok then state.pending = { id = id, bufnr = bufnr, row = row, col = col } end
end

-- Starts (or restarts) the debounce timer; the request goes out when typing pauses.
local function schedule_trigger()
  if not state.timer then state.timer = uv.new_timer() end
  state.timer:stop()
  state.timer:start(config.debounce_ms, 0, vim.schedule_wrap(M.trigger))
end

------------------------------------------------------------------------------------------------------------------
-- Acceptance

-- Runs the item's command so that the server counts the acceptance (and prefetches what comes next).
local function run_command(item)
  local client = get_client()
  if client and type(item.command) == 'table' and item.command.command then
    call(client, 'request', 'workspace/executeCommand',
      { command = item.command.command, arguments = item.command.arguments }, function() end)
  end
end

-- The prefix of `text` accepted by "accept word" / "accept line".
local function partial(text, unit)
  if unit == 'word' then
    return text:match('^[ \t]*[%w_]+') or text:match('^[ \t]*[^%w_%s]+') or text:match('^\n?[ \t]*') or text
  end
  local first = text:match('^[^\n]*')
  if first ~= '' then return first end
  return text:match('^\n[^\n]*')  -- an empty first line: accept the break and the next line
end

-- Inserts the whole suggestion, or its next word / line (unit = 'word' | 'line'), and moves the cursor after it.
function M.accept(unit)
  local s = state.suggestion
  if not s or not api.nvim_buf_is_valid(s.bufnr) then return false end
  local part = unit and partial(s.text, unit) or s.text
  if part == '' then part = s.text end
  local whole = part == s.text
  local lines = vim.split(part, '\n', true)
  stop_timer()
  cancel_pending()
  clear_suggestion()
  -- The whole suggestion replaces the rest of the item's range; a partial accept only inserts.
  local end_col = whole and s.end_col or s.col
  api.nvim_buf_set_text(s.bufnr, s.row, s.col, s.row, end_col, lines)
  local row = s.row + #lines - 1
  local col = (#lines == 1 and s.col or 0) + #lines[#lines]
  api.nvim_win_set_cursor(0, { row + 1, col })
  if whole then
    run_command(s.item)
    return true
  end
  -- Partial: keep showing the rest at the new cursor, and tell the server how much was taken.
  local client = get_client()
  if client then
    local accepted = s.item.insertText
    if type(accepted) == 'table' then accepted = accepted.value end
    local taken = #accepted - #s.text + #part  -- bytes of insertText accepted so far, typed part included
    call(client, 'notify', 'textDocument/didPartiallyAcceptCompletion',
      { item = s.item, acceptedLength = utf16_col(accepted, taken) })
  end
  state.suggestion = {
    bufnr = s.bufnr, row = row, col = col, end_col = col + (s.end_col - s.col),
    text = s.text:sub(#part + 1), item = s.item,
  }
  state.own_tick = api.nvim_buf_get_changedtick(s.bufnr)
  render()
  return true
end

-- Hides the suggestion and tells the server it was rejected.
function M.dismiss()
  local s = state.suggestion
  reset()
  local client = get_client()
  if s and client and type(s.item.command) == 'table' and s.item.command.command == 'spark-ls.accept' then
    call(client, 'request', 'workspace/executeCommand',
      { command = 'spark-ls.reject', arguments = s.item.command.arguments }, function() end)
  end
end

-- Shows `item` (an InlineCompletionItem) at the cursor of the current window as if the server had just sent it,
-- replacing whatever is pending or shown. Returns false when the item does not fit there. For tests and for
-- feeding suggestions from elsewhere.
function M.show_item(item)
  reset()
  local row, col = cursor()
  local s = suggestion_from_item(api.nvim_get_current_buf(), row, col, item)
  if not s then return false end
  state.suggestion = s
  render()
  return true
end

-- True while a suggestion is shown in the current buffer.
function M.is_visible()
  return state.suggestion ~= nil and state.suggestion.bufnr == api.nvim_get_current_buf()
end

------------------------------------------------------------------------------------------------------------------
-- Events

local function on_text_changed()
  local bufnr = api.nvim_get_current_buf()
  if state.own_tick and api.nvim_buf_get_changedtick(bufnr) == state.own_tick then
    return  -- our own partial accept: the rest stays shown
  end
  state.own_tick = nil
  clear_suggestion()
  if state.enabled and state.client_id and vim.lsp.buf_is_attached(bufnr, state.client_id) then
    schedule_trigger()
  end
end

local function on_cursor_moved()
  local row, col = cursor()
  local s, p = state.suggestion, state.pending
  if s and (s.row ~= row or s.col ~= col) then clear_suggestion() end
  if p and (p.row ~= row or p.col ~= col) then cancel_pending() end
  -- A pure cursor move also drops a request not yet sent; TextChangedI, which follows CursorMovedI, restarts it
  -- when the move came from typing.
  if not s or s.row ~= row or s.col ~= col then stop_timer() end
end

------------------------------------------------------------------------------------------------------------------
-- Client and buffers

local function server_cmd()
  if type(config.cmd) == 'table' then return config.cmd end
  local cmd = { config.cmd, 'serve' }
  for _, a in ipairs(config.args or {}) do table.insert(cmd, a) end
  return cmd
end

-- Starts the server once; later calls return the running client's id.
local function ensure_client()
  if get_client() then return state.client_id end
  state.ready = false
  local id
  local client_config = {
    name = 'spark-ls',
    cmd = server_cmd(),
    root_dir = vim.fn.getcwd(),
    init_options = config.settings,
    on_init = function() if state.client_id == id then state.ready = true end end,
    on_exit = function()
      if state.client_id == id then
        state.client_id, state.ready, state.pending = nil, false, nil
        vim.schedule(clear_suggestion)
      end
    end,
  }
  if vim.fn.has('nvim-0.11') == 1 then
    -- vim.lsp.start_client is deprecated there; start without attaching, buffers are attached by M.attach.
    id = vim.lsp.start(client_config, { attach = false, reuse_client = function() return false end })
  else
    id = vim.lsp.start_client(client_config)
  end
  state.client_id = id
  return id
end

-- An insert-mode expr mapping that runs `action` while a suggestion is shown and otherwise gives its key back
-- (not remapped), so <Tab> still inserts a tab, <C-]> still expands abbreviations, and so on.
local function map_fallthrough(bufnr, lhs, action, desc)
  if not lhs or lhs == '' then return end
  -- Key notation; vim.keymap.set applies nvim_replace_termcodes to what the function returns.
  local run = '<Cmd>lua require("spark_ls").' .. action .. '<CR>'
  vim.keymap.set('i', lhs, function()
    if M.is_visible() then return run end
    return lhs
  end, { buffer = bufnr, expr = true, silent = true, desc = desc })
end

-- Neovim >= 0.12: its own inline completion, with <Tab> accepting through vim.lsp.inline_completion.get().
local function map_native(bufnr)
  local lhs = config.keymaps.accept
  if not lhs or lhs == '' then return end
  vim.keymap.set('i', lhs, function()
    if not vim.lsp.inline_completion.get() then return lhs end
  end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = 'spark-ls: accept the suggestion' })
end

-- Attaches the client to a buffer (once) and installs the buffer's mappings.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  if not api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' then return end
  local id = ensure_client()
  if not id then return end
  if not vim.lsp.buf_is_attached(bufnr, id) then vim.lsp.buf_attach_client(bufnr, id) end
  if use_native() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    map_native(bufnr)
    return
  end
  local k = config.keymaps
  map_fallthrough(bufnr, k.accept, 'accept()', 'spark-ls: accept the suggestion')
  map_fallthrough(bufnr, k.accept_word, 'accept("word")', 'spark-ls: accept the next word')
  map_fallthrough(bufnr, k.accept_line, 'accept("line")', 'spark-ls: accept the next line')
  map_fallthrough(bufnr, k.dismiss, 'dismiss()', 'spark-ls: dismiss the suggestion')
end

local function filetype_wanted(ft)
  return vim.tbl_contains(config.filetypes, ft)
end

------------------------------------------------------------------------------------------------------------------
-- Commands

-- :SparkLsStats: prints the server's counters (spark/stats).
function M.stats()
  local client = get_client()
  if not client then
    vim.notify('spark-ls: the server is not running', vim.log.levels.WARN)
    return
  end
  call(client, 'request', 'spark/stats', vim.empty_dict(), function(err, result)
    if err then
      vim.notify('spark-ls: spark/stats failed: ' .. vim.inspect(err), vim.log.levels.ERROR)
    else
      print(vim.inspect(result))
    end
  end)
end

-- :SparkLsToggle: turns suggestions off and on (the server keeps running).
function M.toggle()
  state.enabled = not state.enabled
  if not state.enabled then reset() end
  vim.notify('spark-ls: suggestions ' .. (state.enabled and 'on' or 'off'))
end

-- Stops the server and forgets it; the next attach (or setup) starts a new one.
function M.stop()
  reset()
  local client = get_client()
  state.client_id, state.ready = nil, false
  if client then call(client, 'stop') end
end

-- What the module is doing, for :checkhealth-like inspection and tests.
function M.status()
  local s = state.suggestion
  return {
    client_id = state.client_id,
    ready = state.ready,
    enabled = state.enabled,
    pending = state.pending and state.pending.id or nil,
    suggestion = s and { bufnr = s.bufnr, row = s.row, col = s.col, text = s.text, item = s.item } or nil,
    namespace = NS,
  }
end

------------------------------------------------------------------------------------------------------------------
-- Setup

-- Configures the plugin; calling it again replaces the options and autocommands without starting a second server
-- (a changed command or settings apply after M.stop()).
function M.setup(opts)
  config = vim.tbl_deep_extend('force', vim.deepcopy(defaults), opts or {})
  if opts and opts.filetypes then config.filetypes = opts.filetypes end  -- a list replaces, never merges

  vim.cmd('highlight default link ' .. HL .. ' Comment')

  local group = api.nvim_create_augroup(AUGROUP, { clear = true })
  api.nvim_create_autocmd('ColorScheme', {
    group = group,
    callback = function() vim.cmd('highlight default link ' .. HL .. ' Comment') end,
  })
  api.nvim_create_autocmd('FileType', {
    group = group,
    callback = function(ev)
      if filetype_wanted(ev.match) then M.attach(ev.buf) end
    end,
  })
  if not use_native() then
    api.nvim_create_autocmd({ 'TextChangedI', 'TextChangedP' }, { group = group, callback = on_text_changed })
    api.nvim_create_autocmd('CursorMovedI', { group = group, callback = on_cursor_moved })
    api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, { group = group, callback = reset })
  end

  api.nvim_create_user_command('SparkLsStats', M.stats, { desc = 'spark-ls: print the server\'s statistics' })
  api.nvim_create_user_command('SparkLsToggle', M.toggle, { desc = 'spark-ls: turn suggestions off or on' })

  state.is_setup = true
  local bufnr = api.nvim_get_current_buf()
  if filetype_wanted(vim.bo[bufnr].filetype) then M.attach(bufnr) end
end

return M
