import Contracts
import Store

/// An instance row's state columns as Contracts types them. The columns keep Nova's
/// strings; a state this version does not know reads as nil (status `UNKNOWN`).
extension InstanceRow {
    var vm: VMState? { VMState(rawValue: vmState) }
    var task: TaskState? { taskState.flatMap(TaskState.init(rawValue:)) }

    mutating func set(_ state: VMState) { vmState = state.rawValue }
    mutating func set(task: TaskState?) { taskState = task?.rawValue }
}
