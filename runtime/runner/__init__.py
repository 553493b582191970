"""Running a program's steps in a program runner: the step context (`ctx.chat`,
`ctx.call_tool`, `ctx.sample`), sampling and forks, the planner session, and program
execution with its budget and deadline. Both drivers run programs through this code:
the Ray runtime in runner actors, the simulator on its virtual clock."""
