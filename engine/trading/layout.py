"""Column layout of the trading state arrays, and the codes the kernel writes into them.

The kernel works on plain numpy arrays so that numba compiles it once and both the backtest and the
live :class:`~engine.trading.trader.Trader` pass the very same arrays to the very same code. Each
array is described here by named column indices; numba freezes these module constants into the
compiled code, which is why ``_jitcache`` drops the cached machine code when this file changes.
"""

from __future__ import annotations

# --- integer parameters (TradingParams packed into an int64 vector) -----------------------------
I_FUTURES = 0  # 1: shorts allowed (futures market), 0: spot
I_MAX_OPEN = 1  # max open trades; < 0 = unlimited
I_COOLDOWN = 2  # bars after an exit during which the pair takes no new entry; 0 = off
I_SLG_LIMIT = 3  # stop-loss guard: stop-outs that trigger a pause; 0 = off
I_SLG_LOOKBACK = 4  # ns
I_SLG_STOP = 5  # ns
I_SLG_PER_PAIR = 6  # 1: pause only the pair, 0: pause every pair
I_MDD_LOOKBACK = 7  # ns; max-drawdown guard (enabled when F_MDD_MAX is not NaN)
I_MDD_STOP = 8  # ns
I_LPP_LOOKBACK = 9  # ns; low-profit-pairs guard (enabled when F_LPP_MIN is not NaN)
I_LPP_STOP = 10  # ns
I_LPP_TRADES = 11  # closed trades needed in the window before the guard judges a pair
I_LOSING_DAYS = 12  # consecutive losing UTC days that pause entries for the next day; 0 = off
I_DAILY_CLOSE = 13  # 1: hitting the daily loss limit also closes every open position
N_PARAM_I = 14

# --- float parameters ----------------------------------------------------------------------------
F_FEE_MAKER = 0
F_FEE_TAKER = 1
F_SLIPPAGE = 2
F_INITIAL = 3
F_MAX_PER_TRADE = 4
F_RISK = 5  # risk per trade (ratio of capital lost at the stop); NaN = size by F_MAX_PER_TRADE only
F_MAX_EXPOSURE = 6
F_REINVEST = 7
F_SL_PCT = 8  # NaN = no percentage stop
F_TP_PCT = 9
F_SL_ATR = 10  # stop distance = multiplier * ATR when the strategy gives no stop distance; NaN = off
F_TP_ATR = 11
F_TRAIL_ACT = 12  # NaN = no trailing stop
F_TRAIL_DIST = 13
F_DAILY_LIMIT = 14  # NaN = no daily loss limit
F_LOCK_ACT = 15  # NaN = no profit lock
F_LOCK_KEEP = 16
F_MDD_MAX = 17
F_LPP_MIN = 18
F_MAX_POSITION = 19  # absolute cap on one position's notional (quote currency); NaN = none
N_PARAM_F = 20

# --- per-pair exchange limits (float64 [n_pairs, N_LIMIT]); 0 = no limit --------------------------
L_MIN_NOTIONAL = 0
L_AMOUNT_STEP = 1
L_PRICE_TICK = 2
N_LIMIT = 3

# --- account, float64 vector ----------------------------------------------------------------------
A_CASH = 0  # free cash (margin of open positions is not included)
A_REALIZED = 1  # sum of closed trades' net profit
A_FEES = 2  # every fee paid so far
A_DAY_START_EQ = 3  # equity at the end of the previous UTC day
A_EQUITY = 4  # equity at the end of the last processed time step
N_ACCT_F = 5

# --- account, int64 vector ------------------------------------------------------------------------
B_DAY = 0  # current UTC day number (ns // DAY_NS)
B_STARTED = 1
B_DAILY_BLOCKED = 2
B_LOSING_STREAK = 3
B_LOSING_BLOCK = 4
B_PAUSE_UNTIL = 5  # every pair paused until this time (ns)
B_PAUSE_REASON = 6
B_N_TRADES = 7
B_N_BLOCKED = 8
B_N_OPEN = 9
N_ACCT_I = 10

# --- per-pair position, float64 [n_pairs, N_POS_F] -------------------------------------------------
P_AMOUNT = 0
P_ENTRY = 1  # entry fill price (slippage included)
P_STOP = 2  # initial stop price, NaN = none
P_TP = 3  # take-profit price, NaN = none
P_BEST = 4  # most favourable price seen since entry
P_TRAIL = 5  # trailing stop level, NaN until activated
P_LOCK = 6  # profit-lock stop level, NaN until activated
P_FEE_IN = 7
P_MARK = 8  # last close of the pair (position marked to market at it)
P_PEND_SD = 9  # stop distance decided with the pending entry
P_PEND_TD = 10  # take-profit distance decided with the pending entry
# A fast exit pending (``fast_exit:`` held at the last close): the signal candle's low (long) or high
# (short); the exit fills at the worse of the next open and it. NaN: an ordinary exit, at the open.
P_FAST = 11
# The strategy's ``size:`` decided with the pending entry: the fraction (0, 1] of the stake the risk
# rules give. NaN (a checkpoint saved before sizes existed) is the full stake, as then.
P_PEND_SZ = 12
N_POS_F = 13

# --- per-pair position, int64 [n_pairs, N_POS_I] ---------------------------------------------------
Q_SIDE = 0  # 1 long, -1 short, 0 flat
Q_ENTRY_TIME = 1
Q_ENTRY_BAR = 2
Q_BARS = 3  # candles of this pair seen so far (the current candle's bar number)
Q_LAST_EXIT_BAR = 4
Q_PEND_EXIT = 5  # 1: close at the next open (exit signal on the last closed candle)
Q_PEND_ENTRY = 6  # 1 / -1: open long / short at the next open
Q_PAUSE_UNTIL = 7
Q_PAUSE_REASON = 8
Q_LAST_TIME = 9  # open time of the pair's last candle
Q_PEND_TIME = 10  # open time of the candle whose signal created the pending order
N_POS_I = 11

# --- closed trades, float64 [capacity, N_TRADE_F] and int64 [capacity, N_TRADE_I] ----------------
T_OPEN_PRICE = 0
T_CLOSE_PRICE = 1
T_AMOUNT = 2
T_PROFIT_RATIO = 3
T_PROFIT_ABS = 4
T_FEE_IN = 5
T_FEE_OUT = 6
T_EQUITY_AFTER = 7
N_TRADE_F = 8

U_PAIR = 0
U_SIDE = 1
U_OPEN_TIME = 2
U_CLOSE_TIME = 3
U_REASON = 4
N_TRADE_I = 5

# --- blocked entries, int64 [capacity, N_BLOCKED] --------------------------------------------------
K_TIME = 0
K_PAIR = 1
K_SIDE = 2
K_REASON = 3
N_BLOCKED = 4

# --- exit reasons ----------------------------------------------------------------------------------
EXIT_SIGNAL = 1
EXIT_STOP_LOSS = 2
EXIT_TAKE_PROFIT = 3
EXIT_TRAILING_STOP = 4
EXIT_END_OF_DATA = 5
EXIT_DAILY_LIMIT = 6
# A ``fast_exit:`` rule: at the next open in a backtest (no better than the signal candle's worst
# price), between closes on the trade stream in a live bot (engine.runtime.fast_exit).
EXIT_FAST = 7

EXIT_REASONS: dict[int, str] = {
    EXIT_SIGNAL: "exit_signal",
    EXIT_STOP_LOSS: "stop_loss",
    EXIT_TAKE_PROFIT: "take_profit",
    EXIT_TRAILING_STOP: "trailing_stop",
    EXIT_END_OF_DATA: "end_of_data",
    EXIT_DAILY_LIMIT: "daily_limit",
    EXIT_FAST: "fast_exit",
}
# Exits decided on a close and filled at the next open (the others happen inside a candle).
DECIDED_EXITS = ("exit_signal", "fast_exit")

# --- reasons an entry was refused (0 = allowed) ----------------------------------------------------
OK = 0
BLOCK_MAX_OPEN_TRADES = 1
BLOCK_MAX_EXPOSURE = 2
BLOCK_INSUFFICIENT_CAPITAL = 3
BLOCK_MIN_NOTIONAL = 4
BLOCK_LOT_SIZE = 5
BLOCK_DAILY_LOSS_LIMIT = 6
BLOCK_LOSING_DAYS = 7
BLOCK_COOLDOWN = 8
BLOCK_STOPLOSS_GUARD = 9
BLOCK_MAX_DRAWDOWN = 10
BLOCK_LOW_PROFIT_PAIR = 11
BLOCK_INVALID_STOP = 12

BLOCK_REASONS: dict[int, str] = {
    BLOCK_MAX_OPEN_TRADES: "max_open_trades",
    BLOCK_MAX_EXPOSURE: "max_exposure",
    BLOCK_INSUFFICIENT_CAPITAL: "insufficient_capital",
    BLOCK_MIN_NOTIONAL: "min_notional",
    BLOCK_LOT_SIZE: "lot_size",
    BLOCK_DAILY_LOSS_LIMIT: "daily_loss_limit",
    BLOCK_LOSING_DAYS: "max_consecutive_losing_days",
    BLOCK_COOLDOWN: "cooldown",
    BLOCK_STOPLOSS_GUARD: "stoploss_guard",
    BLOCK_MAX_DRAWDOWN: "max_drawdown",
    BLOCK_LOW_PROFIT_PAIR: "low_profit_pair",
    BLOCK_INVALID_STOP: "invalid_stop",
}

DAY_NS = 86_400_000_000_000
NO_BAR = -(2**62)  # "never": a bar number or time far in the past
